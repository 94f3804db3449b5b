"""The engine's numbers that configs check before anything is loaded (no torch)."""

from __future__ import annotations

__all__ = ["AUTO_LONG_SIDE_MAX", "AUTO_LONG_SIDE_MIN", "AUTO_RATIO_STEP"]

#: ``downsample_ratio: auto`` scales the long side to at most this many pixels ...
AUTO_LONG_SIDE_MAX = 512
#: ... and not below this many, in steps of AUTO_RATIO_STEP (the smallest ratio a config may ask for).
AUTO_LONG_SIDE_MIN = 256
AUTO_RATIO_STEP = 1 / 32
