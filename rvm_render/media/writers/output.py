"""What a writer is: the deliverable formats, their file names, and the writer protocol."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["OutputFormat", "WrittenOutput", "MatteWriter", "output_path"]


class OutputFormat(str, Enum):
    """The deliverables; the value is the name used in flags, config and the manifest."""

    PRORES4444 = "prores4444"
    EXR = "exr"
    ALPHA = "alpha"
    COMP = "comp"
    PNG = "png"

    def __str__(self) -> str:
        return self.value


# File name after the stem; sequences are printf patterns numbered by source frame number.
_SUFFIXES: dict[OutputFormat, str] = {
    OutputFormat.PRORES4444: "_matte.mov",
    OutputFormat.ALPHA: "_alpha.mov",
    OutputFormat.COMP: "_comp.mp4",
    OutputFormat.EXR: "_matte.%06d.exr",
    OutputFormat.PNG: "_matte.%06d.png",
}


def output_path(fmt: OutputFormat, output_dir: Path, stem: str) -> Path:
    """Final path of a deliverable (a printf pattern for sequences).

    ``<stem>_matte.mov`` (ProRes 4444 RGBA), ``<stem>_alpha.mov`` (ProRes 422 HQ grey matte),
    ``<stem>_comp.mp4`` (H.264 composite), ``<stem>_matte.%06d.exr`` / ``.png`` (RGBA frames).
    """
    return Path(output_dir) / f"{stem}{_SUFFIXES[OutputFormat(fmt)]}"


@dataclass(frozen=True, slots=True)
class WrittenOutput:
    """A committed deliverable: ``path`` (printf pattern for sequences) and the frame indices it holds."""

    format: OutputFormat
    path: Path
    first_frame: int
    last_frame: int


@runtime_checkable
class MatteWriter(Protocol):
    """Encodes (fgr, pha) frames to one deliverable under a temporary name; ``close`` commits.

    Shape:
        fgr: [H, W, 3] float32 straight (unpremultiplied) R'G'B' 0..1
        pha: [H, W] float32 alpha 0..1
    """

    final_path: Path

    def write(self, frame_index: int, fgr: np.ndarray, pha: np.ndarray) -> None: ...

    def close(self) -> WrittenOutput: ...

    def abort(self) -> None: ...
