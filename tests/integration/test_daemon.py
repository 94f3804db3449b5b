"""The real ``rvm-render daemon`` process on a temp config and real clips.

Hot folders (slow copies, many files at once, bad files), the job store's promises (once, in
priority then arrival order, resumed after ``kill -9`` with the mattes of an uninterrupted render),
a clean stop on SIGTERM, timelines, and the HTTP API's rules (token, media roots, bad requests,
cancel and retry).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

from rvm_render.api.client import ApiError, RvmRenderClient
from rvm_render.cli.main import main
from support.daemon import TOKEN, DaemonProcess, free_port, running_daemon, wait_for, write_config
from support.daemon import raw_request as _raw
from support.frames import exr_alphas, short_clip

CLIP_FRAMES = 8


def _media(daemon: DaemonProcess) -> Path:
    return daemon.config.parent / "media"


@pytest.fixture(scope="module")
def small_clip(node: DaemonProcess, clips_dir: Path) -> Path:
    """A short real clip inside the node's media root (not in a watch folder)."""
    return short_clip(clips_dir / "05_default_juggle.mp4", _media(node) / "small.mp4", 24)


def _jobs_for(daemon: DaemonProcess, name: str) -> list[dict]:
    return [job for job in daemon.jobs() if Path(job["input"]).name == name]


def test_a_slowly_copied_clip_is_rendered_once_after_it_is_complete(
    node: DaemonProcess, clips_dir: Path, tmp_path: Path
) -> None:
    clip = short_clip(clips_dir / "bedroom.mp4", tmp_path / "slow.mp4", 24)
    data = clip.read_bytes()
    target = _media(node) / "incoming" / "slow.mp4"
    with target.open("wb") as handle:
        for start in range(0, len(data), len(data) // 6 + 1):
            handle.write(data[start : start + len(data) // 6 + 1])
            handle.flush()
            time.sleep(0.4)  # less than settle_seconds: the file keeps changing
    completed = time.time()
    (job,) = wait_for(lambda: _jobs_for(node, "slow.mp4"), 30, "the slow copy to be queued")
    assert job["created_at"] >= completed, "queued only once the copy had finished"
    job = node.wait_done(job["id"])
    manifest = json.loads(Path(job["outputs"][0]).read_text())
    assert manifest["frames"] == 24
    time.sleep(2)  # a settle period later, still one job
    assert len(_jobs_for(node, "slow.mp4")) == 1


def test_twenty_files_are_rendered_once_in_priority_then_arrival_order(
    node: DaemonProcess, clips_dir: Path, tmp_path: Path
) -> None:
    sources = [short_clip(clips_dir / "bedroom.mp4", tmp_path / f"src{n:02d}.mp4", CLIP_FRAMES) for n in range(20)]
    media = _media(node)
    drops = [(media / ("urgent" if n % 4 == 0 else "incoming") / f"batch{n:02d}.mp4", source)
             for n, source in enumerate(sources)]  # fmt: skip
    for target, source in drops:
        shutil.copy(source, target)
    names = {target.name for target, _ in drops}

    def all_done() -> list[dict] | None:
        jobs = [job for job in node.jobs() if Path(job["input"]).name in names]
        return jobs if len(jobs) == 20 and all(job["state"] == "done" for job in jobs) else None

    jobs = wait_for(all_done, 300, "the 20 dropped files to be rendered")
    assert sorted(Path(job["input"]).name for job in jobs) == sorted(names), "each file once"
    assert {job["priority"] for job in jobs} == {0, 10}
    by_start = sorted(jobs, key=lambda job: job["started_at"])
    for position, job in enumerate(by_start):
        for later in by_start[position + 1 :]:
            if later["created_at"] <= job["started_at"]:  # both were waiting when `job` was picked
                assert (job["priority"], -job["id"]) >= (later["priority"], -later["id"]), (job, later)
    for job in jobs:
        assert Path(job["outputs"][0]).is_file()


def test_bad_files_fail_with_a_reason_and_the_daemon_keeps_serving(
    node: DaemonProcess, clips_dir: Path, tmp_path: Path
) -> None:
    media = _media(node)
    (media / "incoming" / "corrupt.mp4").write_bytes(random.Random(7).randbytes(100_000))
    (media / "incoming" / "notes.mov").write_text("not a video\n")
    for name in ("corrupt.mp4", "notes.mov"):
        (job,) = wait_for(lambda name=name: _jobs_for(node, name), 30, f"{name} to be taken")
        job = node.client.wait(job["id"], poll_s=0.2, timeout_s=60)
        assert job["state"] == "failed" and job["error"] and "\n" not in job["error"], job
        error_file = media / "output" / f"{Path(name).stem}.error.txt"
        assert name in error_file.read_text() and job["error"] in error_file.read_text()
    assert node.client.health()["status"] == "ok"
    shutil.copy(short_clip(clips_dir / "bedroom.mp4", tmp_path / "after.mp4", CLIP_FRAMES),
                media / "incoming" / "after.mp4")  # fmt: skip
    (job,) = wait_for(lambda: _jobs_for(node, "after.mp4"), 30, "a good file after the bad ones")
    node.wait_done(job["id"])


def test_a_dropped_timeline_yields_its_rvm_otio(node: DaemonProcess, small_clip: Path) -> None:
    media = _media(node)
    clip = small_clip
    timeline = otio.schema.Timeline("dropped edit")
    track = otio.schema.Track("V1")
    available = otio.opentime.TimeRange(duration=otio.opentime.RationalTime(24, 24))
    reference = otio.schema.ExternalReference(str(clip), available)
    track.append(otio.schema.Clip("shot", reference, otio.opentime.TimeRange(
        otio.opentime.RationalTime(4, 24), otio.opentime.RationalTime(12, 24))))  # fmt: skip
    timeline.tracks.append(track)
    otio.adapters.write_to_file(timeline, str(media / "timelines" / "dropped.otio"))
    (job,) = wait_for(lambda: _jobs_for(node, "dropped.otio"), 30, "the timeline to be taken")
    job = node.wait_done(job["id"])
    result = otio.adapters.read_from_file(str(media / "output" / "dropped.rvm.otio"))
    assert [t.name for t in result.tracks] == ["V1", "V1 RVM Matte"]
    (matte,) = result.tracks[1].find_clips()
    assert Path(matte.media_reference.target_url).is_file()


def _declares_a_huge_body(daemon: DaemonProcess) -> int:
    """Status for a POST announcing a 17 MiB body (answered before the body is sent, as with 100-continue)."""
    import http.client
    from urllib.parse import urlparse

    url = urlparse(daemon.client.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        connection.putrequest("POST", "/jobs")
        for name, value in (("Authorization", f"Bearer {TOKEN}"), ("Content-Type", "application/json"),
                            ("Content-Length", str(17 << 20))):  # fmt: skip
            connection.putheader(name, value)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_api_needs_the_token(node: DaemonProcess) -> None:
    assert _raw(node, "GET", "/health")[0] == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        for method, path in (("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/jobs/1"), ("DELETE", "/jobs/1")):
            status, body = _raw(node, method, path, b"{}", {**headers, "Content-Type": "application/json"})
            assert status == 401, (method, path, headers, status, body)
    assert _raw(node, "GET", "/jobs", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
    schema = _raw(node, "GET", "/openapi.json")[1]
    assert "/jobs/{job_id}/events" in schema["paths"]


def test_paths_outside_the_media_roots_are_refused(
    node: DaemonProcess, small_clip: Path, tmp_path: Path, clips_dir: Path
) -> None:
    media = _media(node)
    outside = tmp_path / "outside.mp4"
    shutil.copy(clips_dir / "bedroom.mp4", outside)
    os.symlink(outside, media / "link.mp4")
    for path in (str(outside), str(media / ".." / tmp_path.name / "outside.mp4"), str(media / "link.mp4"),
                 str(clips_dir / "bedroom.mp4")):  # fmt: skip
        with pytest.raises(ApiError) as err:
            node.client.submit(path)
        assert err.value.status == 403 and "media_roots" in str(err.value), path
    with pytest.raises(ApiError) as err:
        node.client.submit(str(small_clip), output_dir=str(tmp_path))
    assert err.value.status == 403


def test_bad_requests_get_4xx_naming_the_problem(node: DaemonProcess, small_clip: Path) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    status, body = _raw(node, "POST", "/jobs", b'{"path": "x.mp4",', auth)
    assert status == 422 and "json" in json.dumps(body).lower()
    status, body = _raw(node, "POST", "/jobs", b'{"path": "a", "colour": "red"}', auth)
    assert status == 422 and "colour" in json.dumps(body)
    status, body = _raw(node, "POST", "/jobs", b'{"priority": 1}', auth)
    assert status == 422 and "path" in json.dumps(body)
    wrong_format = json.dumps({"path": str(small_clip), "preset": {"formats": ["mp3"]}}).encode()
    status, body = _raw(node, "POST", "/jobs", wrong_format, auth)
    assert status == 400 and "'mp3' is not a format" in body["detail"]
    assert _declares_a_huge_body(node) == 413
    status, _ = _raw(node, "GET", "/jobs/999999", headers=auth)
    assert status == 404
    assert node.client.health()["status"] == "ok"


def test_cancel_stops_at_once_leaves_nothing_half_written_and_retry_resumes(
    node: DaemonProcess, clips_dir: Path
) -> None:
    media = _media(node)
    clip = short_clip(clips_dir / "bedroom.mp4", media / "long.mp4", 96)
    job = node.client.submit(str(clip), output_dir=str(media / "cancelled"), priority=100)
    wait_for(lambda: node.job(job["id"])["frames_done"] >= 20, 120, "the long job to get going")
    cancelled = node.client.cancel(job["id"])
    assert cancelled["state"] == "cancelled"
    time.sleep(2)
    assert node.job(job["id"])["state"] == "cancelled"
    left = sorted(p.name for p in (media / "cancelled").iterdir())
    assert left == [], f"nothing half-written stays: {left}"
    work = node.config.parent / "state" / "work" / f"job-{job['id']}"
    assert any(work.glob("*/segment-*.done.json")), "finished segments are kept for a retry"
    node.client.retry(job["id"])
    done = node.wait_done(job["id"])
    manifest = json.loads(Path(done["outputs"][0]).read_text())
    assert manifest["frames"] == 96


def test_kill_9_mid_job_resumes_and_matches_an_uninterrupted_render(
    tmp_path: Path, clips_dir: Path, tfjs_weights: Path
) -> None:
    port = free_port()
    config = write_config(tmp_path, port=port)
    media = tmp_path / "media"
    clip = short_clip(clips_dir / "bedroom.mp4", tmp_path / "take.mp4", 48)
    with running_daemon(config, port) as daemon:
        shutil.copy(clip, media / "incoming" / "take.mp4")
        (job,) = wait_for(lambda: _jobs_for(daemon, "take.mp4"), 30, "the clip to be queued")
        work = tmp_path / "state" / "work" / f"job-{job['id']}" / "take"
        wait_for(lambda: (work / "segment-1.done.json").exists(), 120, "two finished segments")
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(timeout=30)
    with running_daemon(config, port) as daemon:
        done = daemon.wait_done(job["id"])
        log = (tmp_path / "state" / "daemon.log").read_text()
        assert "segment 0 (frames 0-7) already done; skipped" in log
        assert daemon.stop() == 0
    reference = tmp_path / "reference"
    assert main(["-q", "matte", str(clip), "-o", str(reference), "--weights", str(tfjs_weights), "--formats", "exr",
                 "--downsample-ratio", "0.25", "--segment-frames", "8", "--device", "cpu"]) == 0  # fmt: skip
    pattern = Path(next(p for p in done["outputs"] if p.endswith(".exr")))
    np.testing.assert_array_equal(exr_alphas(pattern, range(48)),
                                  exr_alphas(reference / "take_matte.%06d.exr", range(48)))  # fmt: skip


def test_sigterm_stops_cleanly_within_10_s_and_the_job_resumes(tmp_path: Path, clips_dir: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port=port)
    media = tmp_path / "media"
    with running_daemon(config, port) as daemon:
        short_clip(clips_dir / "bedroom.mp4", media / "incoming" / "take.mp4", 64)
        (job,) = wait_for(lambda: _jobs_for(daemon, "take.mp4"), 30, "the clip to be queued")
        wait_for(lambda: daemon.job(job["id"])["frames_done"] >= 12, 120, "the job to get going")
        started = time.monotonic()
        assert daemon.stop(signal.SIGTERM, timeout_s=10) == 0
        assert time.monotonic() - started < 10
    assert [p.name for p in (media / "output").iterdir() if not p.name.endswith(".error.txt")] == []
    with running_daemon(config, port) as daemon:
        assert daemon.job(job["id"])["state"] in ("queued", "running"), "interrupted, not lost"
        daemon.wait_done(job["id"])
        assert daemon.stop() == 0


def test_cli_submit_and_status_talk_to_the_daemon(
    node: DaemonProcess, small_clip: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RVM_RENDER_URL", node.client.url)
    monkeypatch.setenv("RVM_RENDER_TOKEN", TOKEN)
    assert main(["submit", str(small_clip), "-o", str(_media(node) / "submitted"), "--wait"]) == 0
    printed = capsys.readouterr().out
    assert "done" in printed and "small_matte.%06d.exr" in printed
    assert main(["status", "--json"]) == 0
    jobs = json.loads(capsys.readouterr().out)
    assert any(job["output_dir"].endswith("submitted") and job["state"] == "done" for job in jobs)
    monkeypatch.setenv("RVM_RENDER_TOKEN", "wrong")
    assert main(["status"]) == 2
    assert "401" in capsys.readouterr().err


def test_a_clip_job_renders_only_its_frame_range_and_a_range_is_a_job_of_its_own(
    node: DaemonProcess, small_clip: Path
) -> None:
    output = _media(node) / "ranged"
    job = node.client.submit(str(small_clip), output_dir=str(output), frames="3-6")
    assert job["frames"] == "3-6"
    done = node.wait_done(job["id"])
    manifest = json.loads(Path(done["outputs"][0]).read_text())
    exr = next(o for o in manifest["outputs"] if o["format"] == "exr")
    assert (exr["first_frame"], exr["last_frame"]) == (3, 6)
    assert sorted(p.name for p in output.glob("*.exr")) == [f"small_matte.{n:06d}.exr" for n in range(3, 7)]
    assert done["frames_total"] == done["frames_done"] == 4
    whole = node.client.submit(str(small_clip), output_dir=str(output / "whole"))
    assert whole["id"] != job["id"] and whole["frames"] == ""
    assert node.client.submit(str(small_clip), output_dir=str(output), frames="3-6")["id"] == job["id"]
    with pytest.raises(ApiError) as refused:
        node.client.submit(str(small_clip), output_dir=str(output), frames="6-3")
    assert refused.value.status == 422 and "ends before it starts" in str(refused.value)
    node.wait_done(whole["id"])


def test_client_is_standard_library_only() -> None:
    import ast

    import rvm_render.api.client as client

    tree = ast.parse(Path(client.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}  # fmt: skip
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 and node.module}  # fmt: skip
    import sys

    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported
    assert isinstance(RvmRenderClient("http://x").url, str)
