"""Progress of one render as data: the pipeline reports, the CLI or daemon presents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProgressEvent", "ProgressCallback"]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """How far one clip has got.

    Args:
        input_path: The clip being rendered.
        frames_done: Frames written to every output so far.
        frames_total: Frames this render will write.
        elapsed_s: Wall-clock seconds since the render started.
    """

    input_path: Path
    frames_done: int
    frames_total: int
    elapsed_s: float

    @property
    def fps(self) -> float:
        """Average frames per second so far (0 before the first frame)."""
        return self.frames_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the average speed so far; None until a frame is done."""
        if self.frames_done == 0:
            return None
        return (self.frames_total - self.frames_done) / self.fps

    @property
    def finished(self) -> bool:
        return self.frames_done >= self.frames_total


ProgressCallback = Callable[[ProgressEvent], None]
