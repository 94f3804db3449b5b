"""SMPTE timecode arithmetic: non-drop counting and drop-frame minute rules."""

from __future__ import annotations

from fractions import Fraction

import pytest

from rvm_render.errors import MediaError
from rvm_render.media.timecode import timecode_after

NTSC = Fraction(30000, 1001)


def test_non_drop_counts_nominal_frames() -> None:
    fps = round(NTSC)
    assert timecode_after("00:00:00:00", fps, NTSC) == "00:00:01:00"
    assert timecode_after("01:00:00:00", 0, Fraction(24)) == "01:00:00:00"
    assert timecode_after("00:59:59:23", 1, Fraction(24)) == "01:00:00:00"


def test_drop_frame_skips_two_numbers_except_tenth_minutes() -> None:
    assert timecode_after("00:00:59;29", 1, NTSC) == "00:01:00;02"
    assert timecode_after("00:09:59;29", 1, NTSC) == "00:10:00;00"


def test_drop_frame_round_trip_over_an_hour() -> None:
    start = "00:00:00;00"
    stepped = start
    for _ in range(60):
        stepped = timecode_after(stepped, 1798, NTSC)  # chained steps must equal one big step
    assert stepped == timecode_after(start, 1798 * 60, NTSC)


def test_bad_timecode_is_a_media_error() -> None:
    with pytest.raises(MediaError):
        timecode_after("tomorrow", 1, NTSC)
