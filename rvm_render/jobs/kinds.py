"""What a job renders: a clip (or image sequence) or a timeline; light, for the daemon's config to name it."""

from __future__ import annotations

from enum import Enum

__all__ = ["JobKind"]


class JobKind(str, Enum):
    CLIP = "clip"
    TIMELINE = "timeline"
