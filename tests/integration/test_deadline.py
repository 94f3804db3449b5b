"""Deadline 10: ``farm export/submit --format deadline`` against a strict fake ``deadlinecommand``, and the
``RVMRender`` plug-in's callbacks run by a fake Worker around the real ``rvm-render segment``/``assemble``.

The clip: frames 0-23 of bedroom.mp4 in three sequential segments of 8 frames, so three waves, each
depending on the one before, then the assemble job. Sequential segments hand the recurrent state over
between processes, so the farm's mattes equal a one-pass local render bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fakes.deadline import DEADLINECOMMAND, JOB_INFO_KEYS, DeadlineWorker, options_keys
from rvm_render.cli.main import main
from rvm_render.jobs.checkpoint import WorkDir
from rvm_render.jobs.runner import segment_folder
from support.frames import exr_alphas

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "integrations" / "deadline" / "RVMRender"
RVM_RENDER = Path(sys.executable).parent / "rvm-render"
FRAMES = (0, 23)
PATTERN = "bedroom_matte.%06d.exr"


@pytest.fixture
def deadline_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only the fake deadlinecommand (and Python's folder); returns its submission log."""
    bin_dir = tmp_path / "deadline_bin"
    bin_dir.mkdir()
    script = bin_dir / "deadlinecommand"
    script.write_text(DEADLINECOMMAND.format(python=sys.executable, job_info_keys=sorted(JOB_INFO_KEYS),
                                             options=options_keys(PLUGIN / "RVMRender.options")))  # fmt: skip
    script.chmod(0o755)
    log = tmp_path / "submitted.jsonl"
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DEADLINE_LOG", str(log))
    return log


def _farm(action: str, clips_dir: Path, out: Path, weights: Path, *extra: str, clip: Path | None = None) -> int:
    return main(["farm", action, str(clip or clips_dir / "bedroom.mp4"), "-o", str(out), "--format", "deadline",
                 "--frames", f"{FRAMES[0]}-{FRAMES[1]}", "--segment-frames", "8", "--mode", "sequential",
                 "--downsample-ratio", "0.25", "--formats", "exr", "--weights", str(weights), "--device", "cpu",
                 "--executable", str(RVM_RENDER), *extra])  # fmt: skip


def test_submit_sends_one_job_per_wave_in_order_then_assemble(
    clips_dir: Path, tmp_path: Path, tfjs_weights: Path, deadline_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _farm("export", clips_dir, out, tfjs_weights) == 0
    printed = capsys.readouterr().out
    line = next(line for line in printed.splitlines() if "deadlinecommand -SubmitMultipleJobs -dependent" in line)
    assert deadline_path.read_text() == "", "export only prints the line"

    assert _farm("submit", clips_dir, out, tfjs_weights) == 0
    assert line.count(" -job ") == 4
    jobs = [json.loads(entry) for entry in deadline_path.read_text().splitlines()]
    work = WorkDir.load(out / ".rvm-work" / "bedroom")
    assert [job["job_info"]["Frames"] for job in jobs] == ["0", "1", "2", "0"]
    assert [job["plugin_info"]["Command"] for job in jobs] == ["segment"] * 3 + ["assemble"]
    assert [job["job_info"].get("JobDependencies") for job in jobs] == [None] + [job["id"] for job in jobs[:-1]]
    assert {job["job_info"]["Plugin"] for job in jobs} == {"RVMRender"}
    assert {job["plugin_info"]["WorkDir"] for job in jobs} == {str(work.path)}
    assert {job["job_info"]["BatchName"] for job in jobs} == {"rvm-render bedroom.mp4"}


def test_submit_without_deadlinecommand_says_so(
    clips_dir: Path, tmp_path: Path, tfjs_weights: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    assert shutil.which("deadlinecommand") is None
    assert _farm("submit", clips_dir, tmp_path / "out", tfjs_weights) == 1
    (error,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert error.startswith("error: farm submit: deadlinecommand is not on PATH") and "bin folder" in error


def test_unknown_job_info_keys_are_refused_by_the_fake(tmp_path: Path, deadline_path: Path) -> None:
    job, plugin = tmp_path / "j.job", tmp_path / "p.job"
    job.write_text("Plugin=RVMRender\nFrames=0\nFramez=1\n")
    plugin.write_text("WorkDir=/x\nCommand=segment\n")
    result = subprocess.run(["deadlinecommand", str(job), str(plugin)], capture_output=True, text=True)
    assert result.returncode == 1 and "unknown job info key 'Framez'" in result.stdout


def test_the_plugin_renders_the_jobs_like_a_local_render(
    clips_dir: Path, tmp_path: Path, tfjs_weights: Path, deadline_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert _farm("submit", clips_dir, out, tfjs_weights) == 0
    jobs = [json.loads(entry) for entry in deadline_path.read_text().splitlines()]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # CPU sums depend on the thread count: one everywhere
    worker = DeadlineWorker(PLUGIN, {"RVMRender_Executable": f"/nowhere/rvm-render;{RVM_RENDER}"})
    for job in jobs:  # each after the job it depends on, as Deadline releases them
        for frame in job["job_info"]["Frames"].split(","):
            result = worker.run_task(job["plugin_info"], int(frame))
            assert result.failed is None and result.exit_code == 0, "\n".join(result.output[-20:])
            if job["plugin_info"]["Command"] == "segment":
                assert result.command[1:4] == ["segment", job["plugin_info"]["WorkDir"], "--index"]
                assert result.progress[-1] == 100.0 and result.status[-1] == "8/8 frames"
    frames = range(FRAMES[0], FRAMES[1] + 1)
    single = tmp_path / "single"  # a local one-pass render, in one thread as the tasks were
    subprocess.run([RVM_RENDER, "-q", "matte", clips_dir / "bedroom.mp4", "-o", single, "--frames", "0-23",
                    "--segment-frames", "0", "--downsample-ratio", "0.25", "--formats", "exr",
                    "--weights", tfjs_weights, "--device", "cpu"], check=True, timeout=600)  # fmt: skip
    np.testing.assert_array_equal(exr_alphas(out / PATTERN, frames), exr_alphas(single / PATTERN, frames))


def test_a_bad_input_fails_the_task_with_the_one_line_error_and_a_requeue_keeps_the_checkpoint(
    clips_dir: Path, tmp_path: Path, tfjs_weights: Path, deadline_path: Path
) -> None:
    out = tmp_path / "out"
    clip = shutil.copy(clips_dir / "bedroom.mp4", tmp_path / "bedroom.mp4")
    assert _farm("submit", clips_dir, out, tfjs_weights, clip=clip) == 0
    jobs = [json.loads(entry) for entry in deadline_path.read_text().splitlines()]
    work = WorkDir.load(out / ".rvm-work" / "bedroom")
    worker = DeadlineWorker(PLUGIN, {"RVMRender_Executable": ""})
    assert worker.run_task(jobs[0]["plugin_info"], 0).failed is None

    # requeued mid-segment: the Worker stops rvm-render (SIGTERM); its partials go, segment 0's checkpoint stays
    partials = segment_folder(work, 1)
    requeue = threading.Thread(target=lambda: (worker.started.wait(60), _wait_for_files(partials),
                                               worker.requeue()))  # fmt: skip
    worker.started.clear()
    requeue.start()
    result = worker.run_task(jobs[1]["plugin_info"], 1)
    requeue.join()
    assert result.exit_code == 143, result.output[-10:]
    reloaded = WorkDir.load(work.path)
    assert reloaded.pending_segments() == [1, 2]
    assert not partials.exists() or not any(p.is_file() for p in partials.rglob("*")), list(partials.rglob("*"))

    # the input was replaced under the job: the task fails with rvm-render's one line saying what differs
    clip.write_bytes(b"not the clip the job was planned for")
    failed = worker.run_task(jobs[1]["plugin_info"], 1)
    assert failed.failed is not None and "belongs to another render (input size_bytes" in failed.failed, failed.output
    assert f"error: {failed.failed}" in failed.output


def _wait_for_files(folder: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not (folder.exists() and any(p.is_file() for p in folder.rglob("*"))):
        assert time.monotonic() < deadline, f"no output appeared in {folder}"
        time.sleep(0.05)
