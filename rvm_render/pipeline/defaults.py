"""The render defaults commands and configs show before anything is loaded (no torch, no PyAV)."""

from __future__ import annotations

from rvm_render.media.writers.formats import OutputFormat

__all__ = ["DEFAULT_FORMATS", "DEFAULT_WARMUP_FRAMES"]

DEFAULT_FORMATS = (OutputFormat.PRORES4444, OutputFormat.EXR)
#: Frames of the warm start before each shot (``--warmup``; :func:`~rvm_render.pipeline.render.warm_up`).
#: Off by default, as ``bench/warmup.py`` decided (``bench/results/warmup.txt``, N = 4..32): on composites with true
#: alpha 16 frames cut the first 16 frames' MAD by 28 % and dtSSD by 5 %, but on the shared clips
#: every N moved the first frames away from their converged matte (MAD 1.43 -> 1.55-1.65 x1e-3),
#: so no N won on both MAD and dtSSD in both measurements.
DEFAULT_WARMUP_FRAMES = 0
