"""parse_background(): colour names, hex, image and video files; a one-line error otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from rvm_render.errors import ConfigError
from rvm_render.media.writers import parse_background
from rvm_render.media.writers.background import COLOUR_NAMES


def test_colour_names_and_hex() -> None:
    assert parse_background("Green").colour == COLOUR_NAMES["green"]
    assert parse_background("#ff8000").colour == (1.0, 128 / 255, 0.0)
    assert parse_background("#fff").colour == (1.0, 1.0, 1.0)


def test_files_by_kind(clips_dir: Path, tmp_path: Path) -> None:
    video = parse_background(str(clips_dir / "bedroom.mp4"))
    assert video.kind == "video" and video.path == clips_dir / "bedroom.mp4"
    still = tmp_path / "plate.png"
    still.write_bytes(b"")
    assert parse_background(str(still)).kind == "image"


def test_unknown_background_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_background(str(tmp_path / "missing.mov"))
    assert "\n" not in str(err.value) and "--background" in str(err.value)
