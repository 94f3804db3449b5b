"""What a writer is: its colour, its start timecode, what it wrote and the writer protocol (the formats and
their file names: :mod:`rvm_render.media.writers.formats`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rvm_render.errors import MediaError
from rvm_render.media.colour import OutputColour, output_colour_for
from rvm_render.media.probe import MediaInfo
from rvm_render.media.timecode import timecode_after
from rvm_render.media.writers.formats import OutputFormat, output_path

log = logging.getLogger(__name__)

__all__ = ["OutputFormat", "WrittenOutput", "MatteWriter", "output_path", "colour_of", "movie_timecode"]

#: The start timecode of a source that carries none.
UNTAGGED_START_TIMECODE = "00:00:00:00"


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
