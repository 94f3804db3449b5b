"""The daemon over Ray (``executor: ray``): a local Ray instance with 2 CPU actors renders the jobs' segments.

``kill -9`` of the daemon while its job runs on the actors, then a restart: the job resumes from the
segments the actors finished, and its mattes equal those of an uninterrupted render bit for bit.
Ray's files go to a short private temp folder (its socket paths must stay short).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from support.daemon import DaemonProcess, free_port, running_daemon, wait_for, write_config
from support.frames import exr_alphas, short_clip

FRAMES = 24
RVM_RENDER = Path(sys.executable).parent / "rvm-render"


@pytest.fixture
def ray_tmpdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private RAY_TMPDIR; afterwards, the processes of the Ray instances it held are ended (a daemon killed
    with -9 leaves its local Ray instance's agents behind)."""
    folder = Path(tempfile.mkdtemp(prefix="rvr", dir="/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(folder))
    yield folder
    for process in Path("/proc").glob("[0-9]*"):
        try:
            ours = any(os.readlink(fd).startswith(str(folder)) for fd in (process / "fd").iterdir())
        except OSError:
            continue
        if ours and int(process.name) != os.getpid():
            os.kill(int(process.name), signal.SIGKILL)
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
        assert (done["frames_done"], done["frames_total"]) == (FRAMES, FRAMES)
        log = (tmp_path / "state" / "daemon.log").read_text()
        assert "Ray actor(s): cpu, 1 CPU; cpu, 1 CPU" in log
        assert "(to plan with; no network here)" in log and ", sha256 " in log
        assert not re.search(r"weights '[^']*': RVM mobilenetv3, \w+, sha256", log), "the head opened a model"
        _cancel_and_retry(daemon, clip, tmp_path)
        assert daemon.stop(timeout_s=60) == 0
    assert finished_before and len(finished_before) < FRAMES // 8, "killed mid-job, resumed from its checkpoints"

    reference = tmp_path / "reference"
    subprocess.run([RVM_RENDER, "-q", "matte", clip, "-o", reference, "--weights", tfjs_weights, "--formats", "exr",
                    "--downsample-ratio", "0.25", "--segment-frames", "8", "--device", "cpu", "--executor", "ray",
                    "--workers", "2"], check=True, timeout=600, env=os.environ.copy())  # fmt: skip
    pattern = Path(next(p for p in done["outputs"] if p.endswith(".exr")))
    np.testing.assert_array_equal(exr_alphas(pattern, range(FRAMES)),
                                  exr_alphas(reference / "take_matte.%06d.exr", range(FRAMES)))  # fmt: skip


def _cancel_and_retry(daemon: DaemonProcess, clip: Path, tmp_path: Path) -> None:
    """Cancel stops the actors' segments at once (nothing half-written in the output), retry finishes the job."""
    longer = short_clip(clip, tmp_path / "media" / "longer.mp4", FRAMES)
    job = daemon.client.submit(str(longer), output_dir=str(tmp_path / "media" / "cancelled"))
    wait_for(lambda: daemon.job(job["id"])["state"] == "running", 60, "the second job to start")
    assert daemon.client.cancel(job["id"])["state"] == "cancelled"
    time.sleep(3)
    assert daemon.job(job["id"])["state"] == "cancelled"
    assert list((tmp_path / "media" / "cancelled").iterdir()) == [], "nothing half-written stays"
    daemon.client.retry(job["id"])
    done = daemon.wait_done(job["id"], 600)
    assert json.loads(Path(done["outputs"][0]).read_text())["frames"] == FRAMES
