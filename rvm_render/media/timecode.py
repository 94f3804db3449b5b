"""SMPTE timecode arithmetic (SMPTE ST 12-1): non-drop ``HH:MM:SS:FF`` and drop-frame ``HH:MM:SS;FF``.

Drop-frame skips frame numbers 0 and 1 (0-3 at 59.94) at the start of every minute except
each tenth minute; it applies to 30000/1001 and 60000/1001 timecode with a ';' or '.' separator.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Final

from rvm_render.errors import MediaError

__all__ = ["timecode_after"]

_TIMECODE_RE: Final = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")


def timecode_after(start: str, frames: int, rate: Fraction) -> str:
    """The timecode ``frames`` frames after ``start`` (same format and drop-frame mode).

    Args:
        start: ``HH:MM:SS:FF`` or drop-frame ``HH:MM:SS;FF``.
        frames: frames to add (>= 0).
        rate: the clip's frame rate; the timecode counts at ``round(rate)`` frames a second.

    Raises:
        MediaError: ``start`` is not a timecode.
    """
    match = _TIMECODE_RE.match(start.strip())
    if match is None:
        raise MediaError(f"timecode '{start}' is not HH:MM:SS:FF; fix the source's timecode metadata")
    hours, minutes, seconds, sep, ff = match.groups()
    fps = max(1, round(rate))
    drop = sep in ";.," and fps % 30 == 0 and rate.denominator == 1001
    drop_count = fps // 15 if drop else 0
    total_minutes = int(hours) * 60 + int(minutes)
    number = (total_minutes * 60 + int(seconds)) * fps + int(ff)
    number -= drop_count * (total_minutes - total_minutes // 10)
    number += frames
    if drop:
        per_ten = fps * 600 - drop_count * 9
        per_minute = fps * 60 - drop_count
        tens, rest = divmod(number, per_ten)
        number += drop_count * 9 * tens
        if rest > drop_count:
            number += drop_count * ((rest - drop_count) // per_minute)
    ff_out = number % fps
    seconds_out = number // fps % 60
    minutes_out = number // (fps * 60) % 60
    hours_out = number // (fps * 3600) % 24
    return f"{hours_out:02d}:{minutes_out:02d}:{seconds_out:02d}{sep}{ff_out:0{len(ff)}d}"
