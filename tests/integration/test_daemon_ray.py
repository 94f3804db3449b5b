"""The daemon over Ray (``executor: ray``): a local Ray instance with 2 CPU actors renders the jobs' segments.

``kill -9`` of the daemon while its job runs on the actors, then a restart: the job resumes from the
segments the actors finished, and its mattes equal those of an uninterrupted render bit for bit.
Ray's files go to a short private temp folder (its socket paths must stay short).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from support.daemon import free_port, running_daemon, wait_for, write_config
from support.frames import exr_alphas, short_clip

FRAMES = 24
RVM_RENDER = Path(sys.executable).parent / "rvm-render"


@pytest.fixture
def ray_tmpdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="rvr", dir="/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_kill_9_during_a_ray_job_resumes_with_the_mattes_of_an_uninterrupted_render(
    tmp_path: Path, clips_dir: Path, tfjs_weights: Path, ray_tmpdir: Path
) -> None:
    port = free_port()
    config = write_config(tmp_path, port=port)
    settings = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**settings, "executor": "ray", "workers": 2}))
    clip = short_clip(clips_dir / "bedroom.mp4", tmp_path / "take.mp4", FRAMES)
    with running_daemon(config, port) as daemon:
        shutil.copy(clip, tmp_path / "media" / "incoming" / "take.mp4")
        (job,) = wait_for(lambda: daemon.jobs(), 30, "the clip to be queued")
        work = tmp_path / "state" / "work" / f"job-{job['id']}" / "take"
        wait_for(lambda: list(work.glob("segment-*.done.json")), 300, "a segment finished on a Ray actor")
        assert daemon.job(job["id"])["state"] == "running"
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(timeout=30)
    finished_before = {p.name for p in work.glob("segment-*.done.json")}
    with running_daemon(config, port) as daemon:
        done = daemon.wait_done(job["id"], 600)
        log = (tmp_path / "state" / "daemon.log").read_text()
        assert "rendering" in log and "Ray actor(s): cpu, 1 CPU; cpu, 1 CPU" in log
        assert daemon.stop(timeout_s=60) == 0
    assert finished_before and len(finished_before) < FRAMES // 8, "killed mid-job, resumed from its checkpoints"

    reference = tmp_path / "reference"
    subprocess.run([RVM_RENDER, "-q", "matte", clip, "-o", reference, "--weights", tfjs_weights, "--formats", "exr",
                    "--downsample-ratio", "0.25", "--segment-frames", "8", "--device", "cpu", "--executor", "ray",
                    "--workers", "2"], check=True, timeout=600, env=os.environ.copy())  # fmt: skip
    pattern = Path(next(p for p in done["outputs"] if p.endswith(".exr")))
    np.testing.assert_array_equal(exr_alphas(pattern, range(FRAMES)),
                                  exr_alphas(reference / "take_matte.%06d.exr", range(FRAMES)))  # fmt: skip
