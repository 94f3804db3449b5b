"""What a job renders (a clip or image sequence, or a timeline) and its priority range; light, for the daemon's
config and the API's schemas to name them without loading the store."""

from __future__ import annotations

from enum import Enum

__all__ = ["JobKind", "MAX_PRIORITY"]

#: Priorities run from -MAX_PRIORITY to MAX_PRIORITY (urgent work is 10 or 100; SQLite holds 64 bits).
MAX_PRIORITY = 1_000_000


class JobKind(str, Enum):
    CLIP = "clip"
    TIMELINE = "timeline"
