"""Command-line values: formats, frame ranges, ratios, and what --help promises."""

from __future__ import annotations

import pytest

from rvm_render.cli.main import build_parser
from rvm_render.cli.options import parse_downsample_ratio, parse_formats, parse_frame_range
from rvm_render.cli.progress import ProgressBar, format_duration
from rvm_render.errors import ConfigError
from rvm_render.media.writers import OutputFormat
from rvm_render.pipeline.progress import ProgressEvent


def test_formats_keep_order_and_drop_repeats() -> None:
    assert parse_formats("exr, PRORES4444,exr") == (OutputFormat.EXR, OutputFormat.PRORES4444)


def test_unknown_format_names_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"unknown 'pgn' \(did you mean 'png'\?\)"):
        parse_formats("pgn")


@pytest.mark.parametrize("text", ["10", "5-2", "a-b", "-3", "3-"])
def test_bad_frame_ranges(text: str) -> None:
    with pytest.raises(ConfigError, match="FIRST-LAST"):
        parse_frame_range(text)


def test_frame_range_is_inclusive() -> None:
    assert parse_frame_range("0-99") == (0, 99)


@pytest.mark.parametrize("text", ["0", "1.5", "-0.2", "quarter"])
def test_bad_ratios(text: str) -> None:
    with pytest.raises(ConfigError, match="downsample-ratio"):
        parse_downsample_ratio(text)


def test_ratio_values() -> None:
    assert parse_downsample_ratio("auto") == "auto"
    assert parse_downsample_ratio("0.375") == 0.375


def test_durations() -> None:
    assert [format_duration(s) for s in (0, 59.6, 83.2, 3725)] == ["0:00", "1:00", "1:23", "1:02:05"]


def test_progress_line_shows_fps_and_eta(tmp_path) -> None:
    event = ProgressEvent(tmp_path / "clip.mov", frames_done=50, frames_total=200, elapsed_s=10.0)
    line = ProgressBar.line(event)
    assert "50/200" in line and "5.0 fps" in line and "ETA 0:30" in line


def test_help_lists_subcommands() -> None:
    assert "matte" in build_parser().format_help()


def test_eta_of_a_resumed_render_counts_only_this_run(tmp_path) -> None:
    event = ProgressEvent(tmp_path / "clip.mov", frames_done=150, frames_total=200, elapsed_s=10.0, frames_resumed=100)
    assert event.fps == 5.0 and event.eta_s == 10.0
    line = ProgressBar.line(event)
    assert "150/200" in line and "5.0 fps" in line and "ETA 0:10" in line
    assert ProgressEvent(tmp_path / "c.mov", 100, 200, 3.0, frames_resumed=100).eta_s is None


@pytest.mark.parametrize("text", ["-1", "many", "1.5"])
def test_bad_segment_frames(text: str) -> None:
    from rvm_render.cli.options import parse_frame_count

    with pytest.raises(ConfigError, match="frame count"):
        parse_frame_count(text)


def test_help_lists_segment_commands() -> None:
    text = build_parser().format_help()
    assert "segment" in text and "assemble" in text


def _matte_help() -> str:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    return commands.choices["matte"].format_help()


def test_matte_help_shows_patterns_as_typed() -> None:
    text = _matte_help()
    assert "name.%04d.png" in text and "%%" not in text


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (1920, 1080), (3840, 2160)])
def test_docs_state_the_auto_ratio_the_engine_uses(width: int, height: int) -> None:
    """`matte --help` and the README quote auto's ratio for the usual sizes: the engine's own values."""
    from pathlib import Path

    from rvm_render.engine import auto_downsample_ratio

    claim = f"{auto_downsample_ratio(height, width):g} for {width}x{height}"
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    assert claim in " ".join(_matte_help().split())
    assert claim in " ".join(readme.split())
