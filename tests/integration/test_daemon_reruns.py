"""The real daemon never fails on its own earlier output (issue 16, part B).

Two inputs of one stem get distinct names, loose frames dropped one by one end as one sequence,
a new state_dir reuses or replaces the outputs it finds, a retry after the source changed starts
its work dir over, an ``.error.txt`` goes once its input renders, and a job whose outputs were
deleted is rendered again (by a new submit, or a retry).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import av
import yaml
from PIL import Image

from support.daemon import DaemonProcess, free_port, running_daemon, wait_for, write_config
from support.frames import exr_alphas, short_clip

FRAMES = 8


def _media(daemon: DaemonProcess) -> Path:
    return daemon.config.parent / "media"


def _jobs_for(daemon: DaemonProcess, name: str) -> list[dict]:
    return [job for job in daemon.jobs() if Path(job["input"]).name == name]


def _done_jobs_for(daemon: DaemonProcess, names: set[str], count: int) -> list[dict] | None:
    jobs = [job for job in daemon.jobs() if Path(job["input"]).name in names]
    if any(job["state"] == "failed" for job in jobs):
        raise AssertionError(f"a job failed: {[job for job in jobs if job['state'] == 'failed']}")
    return jobs if len(jobs) >= count and all(job["state"] == "done" for job in jobs) else None


def _manifest(job: dict) -> dict:
    return json.loads(Path(job["outputs"][0]).read_text())


def test_two_inputs_of_one_stem_get_distinct_names(node: DaemonProcess, clips_dir: Path, tmp_path: Path) -> None:
    mp4 = short_clip(clips_dir / "bedroom.mp4", tmp_path / "take.mp4", FRAMES)
    mov = short_clip(clips_dir / "05_default_juggle.mp4", tmp_path / "take.mov", FRAMES + 2)
    output = _media(node) / "output"
    shutil.copy(mp4, _media(node) / "incoming" / "take.mp4")
    shutil.copy(mov, _media(node) / "incoming" / "take.mov")
    jobs = wait_for(lambda: _done_jobs_for(node, {"take.mp4", "take.mov"}, 2), 180, "take.mp4 and take.mov")
    by_input = {Path(job["input"]).name: _manifest(job) for job in jobs}
    assert {Path(m["input"]).name: m["frames"] for m in by_input.values()} == {"take.mp4": FRAMES,
                                                                                "take.mov": FRAMES + 2}  # fmt: skip
    assert sorted(p.name for p in output.glob("take*.rvm.json")) == ["take.rvm.json", "take_mov.rvm.json"]
    stems = {Path(job["outputs"][0]).name for job in jobs}
    assert stems == {"take.rvm.json", "take_mov.rvm.json"}
    assert not (output / "take.error.txt").exists()


def test_loose_frames_dropped_one_by_one_end_as_one_sequence(
    node: DaemonProcess, clips_dir: Path, tmp_path: Path
) -> None:
    numbers = range(1001, 1007)
    with av.open(str(clips_dir / "bedroom.mp4")) as container:
        for number, frame in zip(numbers, container.decode(video=0)):
            Image.fromarray(frame.to_ndarray(format="rgb24")).save(tmp_path / f"x.{number}.png")
    for number in numbers:
        shutil.copy(tmp_path / f"x.{number}.png", _media(node) / "incoming" / f"x.{number}.png")
        time.sleep(0.3)
    names = {f"x.{number}.png" for number in numbers}
    jobs = wait_for(lambda: _done_jobs_for(node, names, len(names)), 240, "the loose frames' jobs")
    last = max(jobs, key=lambda job: job["finished_at"])
    manifest = _manifest(last)
    assert (manifest["first_frame"], manifest["last_frame"]) == (1001, 1006)
    pattern = Path(next(o["path"] for o in manifest["outputs"] if o["format"] == "exr"))
    assert pattern.name == "x_matte.%06d.exr"
    alphas = exr_alphas(pattern, numbers)
    assert alphas.shape[0] == 6 and float(alphas.max()) > 0.5
    assert not (_media(node) / "output" / "x.error.txt").exists()


def test_an_error_file_goes_once_its_input_renders(node: DaemonProcess, clips_dir: Path, tmp_path: Path) -> None:
    target = _media(node) / "incoming" / "fixed.mp4"
    target.write_bytes(b"\0" * 50_000)
    error_file = _media(node) / "output" / "fixed.error.txt"
    wait_for(error_file.exists, 60, "the bad file's .error.txt")
    time.sleep(1)
    clip = short_clip(clips_dir / "bedroom.mp4", tmp_path / "fixed.mp4", FRAMES)
    shutil.copy(clip, tmp_path / "fixed.part")
    (tmp_path / "fixed.part").replace(target)  # re-exported under the same name
    jobs = wait_for(lambda: [j for j in _jobs_for(node, "fixed.mp4") if j["state"] == "done"], 120, "fixed.mp4")
    assert _manifest(jobs[0])["frames"] == FRAMES
    assert not error_file.exists()


def test_a_retry_after_the_source_changed_starts_its_work_dir_over(node: DaemonProcess, clips_dir: Path) -> None:
    media = _media(node)
    clip = short_clip(clips_dir / "bedroom.mp4", media / "changing.mp4", 64)
    job = node.client.submit(str(clip), output_dir=str(media / "changing"), priority=100)
    wait_for(lambda: node.job(job["id"])["frames_done"] >= FRAMES, 120, "the first segment")
    node.client.cancel(job["id"])
    work = node.config.parent / "state" / "work" / f"job-{job['id']}"
    assert any(work.glob("*/segment-*.done.json")), "a finished segment is kept for a retry"
    short_clip(clips_dir / "05_default_juggle.mp4", media / "changing.mp4", 40)
    node.client.retry(job["id"])
    done = node.wait_done(job["id"])
    assert _manifest(done)["frames"] == 40


def test_a_job_whose_outputs_were_deleted_renders_again_on_submit_and_on_retry(
    node: DaemonProcess, clips_dir: Path
) -> None:
    media = _media(node)
    clip = short_clip(clips_dir / "bedroom.mp4", media / "deleted.mp4", FRAMES)
    output = media / "deleted"
    first = node.wait_done(node.client.submit(str(clip), output_dir=str(output))["id"])
    shutil.rmtree(output)
    again = node.client.submit(str(clip), output_dir=str(output))
    assert again["id"] == first["id"] and again["state"] in ("queued", "running")
    node.wait_done(again["id"])
    assert len(list(output.glob("deleted_matte.*.exr"))) == FRAMES
    for frame in list(output.glob("deleted_matte.*.exr"))[:2]:
        frame.unlink()
    retried = node.client.retry(first["id"])
    assert retried["state"] in ("queued", "running")
    node.wait_done(first["id"])
    assert len(list(output.glob("deleted_matte.*.exr"))) == FRAMES


def test_a_new_state_dir_reuses_unchanged_outputs_and_replaces_changed_ones(tmp_path: Path, clips_dir: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port=port)
    incoming = tmp_path / "media" / "incoming"
    incoming.mkdir(parents=True)
    short_clip(clips_dir / "bedroom.mp4", incoming / "same.mp4", FRAMES)
    changed = short_clip(clips_dir / "bedroom.mp4", incoming / "changed.mp4", FRAMES)
    names = {"same.mp4", "changed.mp4"}
    with running_daemon(config, port) as daemon:
        wait_for(lambda: _done_jobs_for(daemon, names, 2), 180, "the first renders")
        assert daemon.stop() == 0
    output = tmp_path / "media" / "output"
    same_manifest = (output / "same.rvm.json").read_text()
    before = exr_alphas(output / "changed_matte.%06d.exr", range(FRAMES))
    same_mtime = (output / "same_matte.000000.exr").stat().st_mtime_ns
    short_clip(clips_dir / "05_default_juggle.mp4", changed, FRAMES)
    document = yaml.safe_load(config.read_text())
    document["state_dir"] = "state2"
    config.write_text(yaml.safe_dump(document))
    with running_daemon(config, port) as daemon:
        jobs = wait_for(lambda: _done_jobs_for(daemon, names, 2), 180, "the jobs of the new state_dir")
        assert {Path(job["outputs"][0]).name for job in jobs} == {"same.rvm.json", "changed.rvm.json"}
        assert all(job["frames_done"] == job["frames_total"] == FRAMES for job in jobs)
        assert daemon.stop() == 0
    assert (output / "same.rvm.json").read_text() == same_manifest, "unchanged: reused"
    assert (output / "same_matte.000000.exr").stat().st_mtime_ns == same_mtime
    replaced = json.loads((output / "changed.rvm.json").read_text())
    assert replaced["input_fingerprint"]["size_bytes"] == changed.stat().st_size, "changed: replaced"
    with av.open(str(changed)) as container:
        size = (container.streams.video[0].height, container.streams.video[0].width)
    after = exr_alphas(output / "changed_matte.%06d.exr", range(FRAMES))
    assert after.shape == (FRAMES, *size) != before.shape
    assert not list(output.glob("*.error.txt"))
    assert sorted(p.name for p in output.glob("*.rvm.json")) == ["changed.rvm.json", "same.rvm.json"]
