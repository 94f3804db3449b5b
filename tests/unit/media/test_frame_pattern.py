"""printf frame patterns: the frame field, ``%%`` escapes, ``####``, and file-name matching."""

from __future__ import annotations

from rvm_render.media.frame_pattern import escaped, file_name_regex, frame_field, hashes_as_printf, unescaped


def test_frame_field_finds_the_conversion_not_an_escape() -> None:
    name = "take 100%%.%04d.exr"
    field = frame_field(name)
    assert field is not None and name[field.start : field.end] == "%04d" and field.width == 4
    assert field.prefix(name) == "take 100%." and field.suffix(name) == ".exr"
    assert name % 7 == "take 100%.0007.exr"


def test_names_without_a_field() -> None:
    for name in ("take 100%.mp4", "100%%.png", "shot#1.mov", "plain.exr", "50%%d.png"):
        assert frame_field(name) is None, name


def test_unpadded_field_matches_any_number_of_digits() -> None:
    field = frame_field("shot.%d.png")
    assert field is not None and field.width == 0
    regex = file_name_regex("shot.%d.png", field)
    assert [bool(regex.match(n)) for n in ("shot.7.png", "shot.1001.png", "shot.x.png")] == [True, True, False]


def test_padded_field_matches_exactly_its_width() -> None:
    name = escaped("a%b.") + "%06d" + ".exr"
    field = frame_field(name)
    assert field is not None
    regex = file_name_regex(name, field)
    assert regex.match("a%b.001001.exr").group(1) == "001001"
    assert regex.match("a%b.1001.exr") is None and regex.match("a%%b.001001.exr") is None


def test_hashes_become_a_printf_field_and_the_rest_is_escaped() -> None:
    assert hashes_as_printf("shot.####.png") == "shot.%04d.png"
    assert hashes_as_printf("take 100%_#1.##.png") == "take 100%%_#1.%02d.png"
    assert hashes_as_printf("plain.png") is None


def test_escape_round_trips() -> None:
    for text in ("", "100%", "%%", "a%b%c"):
        assert unescaped(escaped(text)) == text
        assert escaped(text) % () == text
