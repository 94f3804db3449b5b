"""What a writer is: the deliverable formats, their file names, their colour, and the writer protocol."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rvm_render.errors import MediaError
from rvm_render.media.colour import OutputColour, output_colour_for
from rvm_render.media.frame_pattern import escaped
from rvm_render.media.probe import MediaInfo
from rvm_render.media.timecode import timecode_after

log = logging.getLogger(__name__)

__all__ = ["OutputFormat", "WrittenOutput", "MatteWriter", "output_path", "colour_of", "movie_timecode"]

#: The start timecode of a source that carries none.
UNTAGGED_START_TIMECODE = "00:00:00:00"


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


def colour_of(info: MediaInfo) -> OutputColour:
    """The primaries, transfer and matrix the deliverables of ``info`` carry (its own, BT.709 if untagged)."""
    return output_colour_for(info.colorspace, info.color_primaries, info.color_trc)


def movie_timecode(info: MediaInfo, frame_index: int) -> str | None:
    """The start timecode of a movie output whose first frame is ``frame_index`` of ``info``.

    The source's start timecode (00:00:00:00 when it has none) plus the frame *number*, so every
    matte frame carries the timecode of the source frame it was made from, and an editor's
    source ranges, which count from that timecode, address the same frames in the matte. None
    (with a warning) when the source's timecode is unreadable.
    """
    try:
        return timecode_after(info.timecode or UNTAGGED_START_TIMECODE, info.frame_number(frame_index), info.rate)
    except MediaError as err:
        log.warning("%s; no timecode written for '%s'", err, info.path)
        return None


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
