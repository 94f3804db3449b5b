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
        elapsed_s: Wall-clock seconds since the render (this run of it) started.
        frames_resumed: Frames of ``frames_done`` finished by an earlier run (a resumed
            segmented render); they count as done but not towards this run's speed.
        label: What a display names the render by: the request's output stem where it has one
            (a timeline conform's ``<media>_<first>-<last>``), else None for the input's file name.
    """

    input_path: Path
    frames_done: int
    frames_total: int
    elapsed_s: float
    frames_resumed: int = 0
    label: str | None = None

    @property
    def fps(self) -> float:
        """Average frames per second of this run so far (0 before its first frame)."""
        frames = self.frames_done - self.frames_resumed
        return frames / self.elapsed_s if self.elapsed_s > 0 and frames > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at this run's average speed; None until this run has done a frame."""
        fps = self.fps
        if fps <= 0:
            return None
        return (self.frames_total - self.frames_done) / fps

    @property
    def finished(self) -> bool:
        return self.frames_done >= self.frames_total


ProgressCallback = Callable[[ProgressEvent], None]
