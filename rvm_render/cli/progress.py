"""Terminal progress: a single redrawn line with frames, fps and ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rvm_render.pipeline.progress import ProgressEvent

__all__ = ["ProgressBar", "format_duration"]

_BAR_WIDTH = 28


def format_duration(seconds: float) -> str:
    """``83.2`` -> ``'1:23'``; hours appear only when needed."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """Draws ProgressEvents on a terminal; on a pipe, prints a line every ``log_interval_s``."""

    def __init__(self, stream: TextIO | None = None, log_interval_s: float = 10.0) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._interactive = self._stream.isatty()
        self._log_interval_s = log_interval_s
        self._last_log = float("-inf")

    def __call__(self, event: ProgressEvent) -> None:
        line = self.line(event)
        if self._interactive:
            end = "\n" if event.finished else ""
            self._stream.write(f"\r\x1b[2K{line}{end}")
            self._stream.flush()
            return
        now = time.monotonic()
        if event.finished or now - self._last_log >= self._log_interval_s:
            self._last_log = now
            self._stream.write(line + "\n")
            self._stream.flush()

    @staticmethod
    def line(event: ProgressEvent) -> str:
        total = max(event.frames_total, 1)
        filled = int(_BAR_WIDTH * event.frames_done / total)
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        percent = 100 * event.frames_done / total
        eta = event.eta_s
        timing = "done" if event.finished else ("ETA --:--" if eta is None else f"ETA {format_duration(eta)}")
        return (
            f"{event.label or event.input_path.name} [{bar}] {percent:5.1f}% "
            f"{event.frames_done}/{event.frames_total} frames {event.fps:5.1f} fps "
            f"{format_duration(event.elapsed_s)} elapsed, {timing}"
        )
