"""`rvm-render matte --workers/--executor`: segments spread over workers, assembled like one render."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import OpenEXR
import pytest

from rvm_render.cli.main import main


def _alpha(manifest_path: Path) -> np.ndarray:
    manifest = json.loads(manifest_path.read_text())
    (output,) = manifest["outputs"]
    pattern = Path(output["path"])
    frames = []
    for index in range(output["first_frame"], output["last_frame"] + 1):
        with OpenEXR.File(str(pattern.parent / (pattern.name % index)), separate_channels=True) as exr:
            frames.append(np.asarray(exr.channels()["A"].pixels, dtype=np.float32))
    return np.stack(frames)


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_workers_render_matches_one_pass(
    executor: str, tmp_path: Path, clips_dir: Path, tfjs_weights: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    common = [str(clips_dir / "05_default_juggle.mp4"), "--weights", str(tfjs_weights), "--formats", "exr",
              "--frames", "0-35", "--downsample-ratio", "0.25", "--device", "cpu"]
    assert main(["-q", "matte", *common, "-o", str(tmp_path / "one")]) == 0
    code = main(["-q", "matte", *common, "-o", str(tmp_path / "spread"), "--workers", "2",
                 "--executor", executor, "--segment-frames", "18", "--preroll", "16"])
    assert code == 0
    one = _alpha(tmp_path / "one" / "05_default_juggle.rvm.json")
    spread = _alpha(tmp_path / "spread" / "05_default_juggle.rvm.json")
    assert spread.shape == one.shape == (36, 720, 1280)
    # Segment 0 starts at the clip start: the same computation as one pass, up to the float
    # summation order of a 1-thread worker versus the 2-thread single pass.
    assert np.abs(spread[:18] - one[:18]).mean() < 1e-5
    # Segment 1 warmed up on 16 pre-roll frames: within the measured pre-roll tolerance.
    assert np.abs(spread[18:] - one[18:]).mean() < 1e-3
    assert not (tmp_path / "spread" / ".rvm-work").exists()
    quiet = capfd.readouterr().err
    assert "INFO" not in quiet, f"-q prints only errors, Ray's lines included:\n{quiet}"


def test_a_workers_run_reports_the_speed_the_batch_delivered(
    tmp_path: Path, clips_dir: Path, tfjs_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.perf_counter()
    assert main(["matte", str(clips_dir / "bedroom.mp4"), "--weights", str(tfjs_weights), "--formats", "exr",
                 "--frames", "0-15", "--downsample-ratio", "0.25", "--device", "cpu", "-o", str(tmp_path),
                 "--workers", "1", "--segment-frames", "8"]) == 0  # fmt: skip
    wall = time.perf_counter() - started
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "bedroom.rvm.json" in line]
    fps = float(re.search(r"16 frames, ([\d.]+) fps", line).group(1))  # type: ignore[union-attr]
    assert 16 / wall <= fps <= 16 / (0.5 * wall), (line, wall)  # not the assembly's speed alone (hundreds of fps)
