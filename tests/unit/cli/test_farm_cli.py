"""``rvm-render farm export``: argument checks that fail before any weights or media are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from rvm_render.cli.main import build_parser, main
from rvm_render.jobs.segments import DEFAULT_SEGMENT_FRAMES


def test_farm_export_is_registered_with_its_formats() -> None:
    args = build_parser().parse_args(["farm", "export", "in.mov", "-o", "out", "--format", "opencue"])
    assert (args.farm_format, args.mode, args.segment_frames) == ("opencue", "parallel", DEFAULT_SEGMENT_FRAMES)
    args = build_parser().parse_args(["farm", "submit", "in.mov", "-o", "out", "--format", "deadline"])
    assert (args.farm_command, args.farm_format) == ("submit", "deadline")
    with pytest.raises(SystemExit) as usage:
        build_parser().parse_args(["farm", "export", "in.mov", "-o", "out", "--format", "tractor"])
    assert usage.value.code == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "openjd", "--show", "demo"], "OpenCue fields; use them with --format opencue"),
        (["--format", "openjd", "--segment-frames", "0"], "--segment-frames: a farm job needs segments"),
    ],
)
def test_bad_combinations_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code = main(["farm", "export", str(tmp_path / "missing.mov"), "-o", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_farm_submit_sends_deadline_jobs_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["farm", "submit", str(tmp_path / "missing.mov"), "-o", str(tmp_path / "out"), "--format", "openjd"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: farm submit: --format openjd is submitted with its own tools")
