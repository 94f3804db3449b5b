"""The conform defaults commands and configs show before anything is loaded (no OpenTimelineIO, no torch)."""

from __future__ import annotations

__all__ = ["DEFAULT_HANDLES"]

#: Frames added on each side of what an edit shows, for trims and slips after the conform.
DEFAULT_HANDLES = 12
