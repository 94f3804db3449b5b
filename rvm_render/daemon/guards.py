"""Resource guards: a job starts only with room for its outputs, and while memory is available.

Output sizes are estimated from each format's measured data rate on the 720p sample (bytes per
pixel per frame, rounded up for detailed plates): ProRes 4444 at quantiser 1 wrote 2.3, the EXR
sequence 3.5, RGBA PNG 2.0, ProRes 422 HQ grey matte 0.06, H.264 comp 0.007.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import psutil

from rvm_render.media.writers import OutputFormat

__all__ = ["BYTES_PER_PIXEL_FRAME", "estimated_output_bytes", "disk_shortfall", "memory_available_gib"]

BYTES_PER_PIXEL_FRAME: dict[OutputFormat, float] = {
    OutputFormat.PRORES4444: 3.0,
    OutputFormat.EXR: 5.0,
    OutputFormat.PNG: 4.0,
    OutputFormat.ALPHA: 0.5,
    OutputFormat.COMP: 0.1,
}
GIB = 1 << 30


def estimated_output_bytes(formats: Sequence[OutputFormat], width: int, height: int, frames: int) -> int:
    """The disk the deliverables of ``frames`` frames of ``width x height`` are expected to take."""
    return int(sum(BYTES_PER_PIXEL_FRAME[fmt] for fmt in formats) * width * height * frames)


def disk_shortfall(output_dir: Path, needed_bytes: int) -> str | None:
    """Why ``output_dir`` cannot take ``needed_bytes`` more (one line), or None when it can."""
    probe_dir = output_dir
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    free = shutil.disk_usage(probe_dir).free
    if free >= needed_bytes:
        return None
    return (
        f"not enough free disk at '{output_dir}': the outputs need about {needed_bytes / GIB:.1f} GiB, "
        f"{free / GIB:.1f} GiB are free; free some space and retry the job"
    )


def memory_available_gib() -> float:
    return psutil.virtual_memory().available / GIB
