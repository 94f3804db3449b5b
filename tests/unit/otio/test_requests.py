"""Edit time to media frames, exactly; and media locations in every form editors write them."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from opentimelineio.opentime import RationalTime as RT
from opentimelineio.opentime import TimeRange as TR

from rvm_render.otio.media_paths import MediaFinder, file_name, local_path
from rvm_render.otio.requests import media_frame_span

NTSC = Fraction(30000, 1001)
FILM = Fraction(24000, 1001)


def test_same_rate_is_the_frame_numbers() -> None:
    assert media_frame_span(TR(RT(110, 24), RT(48, 24)), RT(100, 24), Fraction(24)) == (10, 57)


def test_timeline_rate_source_ranges_map_to_the_media_rate() -> None:
    """Resolve writes 29.97 media's ranges at a 23.976 timeline's rate: 24 frames there are 30 of the media."""
    assert media_frame_span(TR(RT(24, 23.976), RT(48, 23.976)), RT(0, 23.976), NTSC) == (30, 89)


def test_hiero_float_rate_rounds_to_the_nearest_frame() -> None:
    """A float rate such as 23.976024627685547 lands a hair off whole frames: rounded, never truncated."""
    hiero = 23.976024627685547
    start = RT(86410, 24).rescaled_to(hiero)
    assert start.value != int(start.value)
    assert media_frame_span(TR(start, RT(48, 24).rescaled_to(hiero)), RT(86400, 24), Fraction(24)) == (10, 57)


def test_rounding_is_to_the_nearest_frame() -> None:
    # 25 timeline frames at 23.976 are 31.25 frames of 29.97 media: 31; 26 are 32.5: 33 (half up).
    assert media_frame_span(TR(RT(25, FILM), RT(1, FILM)), RT(0, FILM), NTSC)[0] == 31
    assert media_frame_span(TR(RT(26, FILM), RT(1, FILM)), RT(0, FILM), NTSC)[0] == 33


def test_transition_handles_and_retimes_widen_the_span() -> None:
    source = TR(RT(20, 30), RT(10, 30))
    assert media_frame_span(source, RT(0, 30), Fraction(30)) == (20, 29)
    assert media_frame_span(source, RT(0, 30), Fraction(30), in_handle=RT(4, 30), out_handle=RT(2, 30)) == (16, 31)
    assert media_frame_span(source, RT(0, 30), Fraction(30), time_scalar=Fraction(2)) == (20, 39)
    assert media_frame_span(source, RT(0, 30), Fraction(30), time_scalar=Fraction(0)) == (20, 20)


def test_a_reverse_covers_both_readings_of_its_source_range() -> None:
    """Source range 220-231 reversed: OpenTimelineIO's transform plays 220, 219 ... 209; Premiere/FCP XML (and
    Resolve) play the frames the range names from the last, 231 ... 220. The span holds both, 220 included."""
    source = TR(RT(220, 24), RT(12, 24))
    first, last = media_frame_span(source, RT(0, 24), Fraction(24), time_scalar=Fraction(-1))
    otio_reading = range(220, 220 - 12, -1)
    editors_reading = range(231, 219, -1)
    assert first <= min(otio_reading) and last >= max(editors_reading) and last - first + 1 <= 12 * 2 + 1
    assert media_frame_span(source, RT(0, 24), Fraction(24), time_scalar=Fraction(1)) == (220, 231)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("file:///Volumes/Media/a%20b.mov", "/Volumes/Media/a b.mov"),
        ("file://localhost/Volumes/Media/a.mov", "/Volumes/Media/a.mov"),
        ("file://localhost/D%3a/media/shot.mov", "D:/media/shot.mov"),
        ("file:///C:/Media/shot.mov", "C:/Media/shot.mov"),
        ("file://server/share/shot.mov", "//server/share/shot.mov"),
        ("C:\\Media\\shot.mov", "C:\\Media\\shot.mov"),
        ("/abs/shot.mov", "/abs/shot.mov"),
        ("media/shot.mov", "/edit/media/shot.mov"),
    ],
)
def test_media_paths_in_every_form(target: str, expected: str) -> None:
    assert str(local_path(target, Path("/edit"))) == expected


def test_file_names_of_foreign_paths() -> None:
    names = ["C:\\Media\\shot 1.mov", "file://localhost/D%3a/media/shot%201.mov", "/Volumes/x/shot 1.mov"]
    assert {file_name(name) for name in names} == {"shot 1.mov"}


def test_relink_finds_by_name_and_refuses_to_guess(tmp_path: Path) -> None:
    for folder in ("a", "b/c"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "a" / "unique.mov").write_bytes(b"x")
    (tmp_path / "a" / "twice.mov").write_bytes(b"x")
    (tmp_path / "b" / "c" / "twice.mov").write_bytes(b"x")
    finder = MediaFinder([tmp_path])
    found, why = finder.find(Path("D:/media/unique.mov"))
    assert found == tmp_path / "a" / "unique.mov" and "relinked" in why
    found, why = finder.find(Path("/Volumes/x/twice.mov"))
    assert found is None and "ambiguous" in why and "2 files" in why
    found, why = MediaFinder([]).find(Path("/Volumes/x/none.mov"))
    assert found is None and "--relink" in why


def test_float_rates_read_as_the_video_rate_they_stand_for() -> None:
    from rvm_render.otio.requests import exact_rate

    assert exact_rate(29.97) == NTSC and exact_rate(23.976024627685547) == FILM and exact_rate(23.976) == FILM
    assert exact_rate(24.0) == 24 and exact_rate(59.94) == Fraction(60000, 1001)
    assert exact_rate(12.5) == Fraction(25, 2)
