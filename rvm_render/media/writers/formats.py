"""The deliverable formats and their file names; light (no PyAV), for commands and configs to name them."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from rvm_render.media.frame_pattern import escaped

__all__ = ["OutputFormat", "output_path"]


class OutputFormat(str, Enum):
    """The deliverables; the value is the name used in flags, config and the manifest."""

    PRORES4444 = "prores4444"
    EXR = "exr"
    ALPHA = "alpha"
    COMP = "comp"
    PNG = "png"

    def __str__(self) -> str:
        return self.value

    @property
    def is_sequence(self) -> bool:
        """Whether the deliverable is numbered frame files (its path is a printf pattern)."""
        return "%" in _SUFFIXES[self]


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
    In a pattern a ``%`` of the stem is escaped (``take 100%%_matte.%06d.exr``).
    """
    fmt = OutputFormat(fmt)
    return Path(output_dir) / f"{escaped(stem) if fmt.is_sequence else stem}{_SUFFIXES[fmt]}"
