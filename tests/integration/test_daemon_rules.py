"""The render node's rules under a demanding user, on the real ``rvm-render daemon`` process.

One daemon per state folder and port, no loop of its own outputs (no output or state inside a watch
folder), and clear outcomes: a job that cannot do what was asked fails saying why, a file still being
copied waits instead of failing, and the client and CLI answer every problem in one line.
"""

from __future__ import annotations

import ctypes
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import opentimelineio as otio
import pytest
import yaml

from rvm_render.api.client import ApiError
from rvm_render.daemon.folder_claims import CLAIM_FILE
from rvm_render.media.probe import probe
from rvm_render.media.reader import open_reader
from support.cli import installed_rvm_render, matte, run_installed
from support.daemon import TOKEN, DaemonProcess, free_port, wait_for, write_config
from support.frames import exr_alphas, short_clip


@pytest.fixture(scope="module")
def small_clip(node: DaemonProcess, clips_dir: Path) -> Path:
    """A short real clip inside the node's media root (not in a watch folder)."""
    return short_clip(clips_dir / "05_default_juggle.mp4", node.media / "small.mp4", 12)


def _running(node: DaemonProcess, clip: Path, output: str, frames: int = 200) -> dict:
    """A job of ``frames`` frames of ``clip`` that is rendering and reports its speed (it goes before queued ones;
    long enough to be still rendering on a GPU when a test acts on it, then cancelled or cut short)."""
    source = short_clip(clip, node.media / f"{output}.mp4", frames)
    queued = node.client.submit(str(source), output_dir=str(node.media / output), priority=100)

    def rendering() -> dict | None:
        job = node.job(queued["id"])
        return job if job["frames_done"] > 0 and job["fps"] is not None else None

    return wait_for(rendering, 120, f"{output} to render")


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused command printed (no traceback)."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# --- one daemon per state --------------------------------------------------------------


def test_a_second_daemon_on_the_same_state_exits_naming_the_first_and_leaves_its_job(
    node: DaemonProcess, clips_dir: Path
) -> None:
    job = _running(node, clips_dir / "bedroom.mp4", "held", frames=48)
    second = run_installed("daemon", "--config", str(node.config), timeout_s=120)
    line = _error_line(second)
    assert second.returncode == 1
    assert f"pid {node.process.pid} on host {socket.gethostname()} since " in line and "state_dir" in line
    now = node.job(job["id"])
    assert now["state"] in ("running", "done") and now["started_at"] == job["started_at"], "its job untouched"
    done = node.wait_done(job["id"])
    assert json.loads(Path(done["outputs"][0]).read_text())["frames"] == 48
    log = (node.config.parent / "state" / "daemon.log").read_text()
    assert "interrupted" not in log


def test_a_daemon_on_a_busy_port_stops_before_opening_its_store(node: DaemonProcess) -> None:
    config = yaml.safe_load(node.config.read_text())
    config.update(state_dir="other-state", watch=[])
    other = node.config.parent / "other.yaml"
    other.write_text(yaml.safe_dump(config))
    result = run_installed("daemon", "--config", str(other), timeout_s=120)
    assert result.returncode == 2 and "api.port" in _error_line(result)
    assert not (node.config.parent / "other-state" / "jobs.sqlite").exists()


def test_retry_of_a_running_job_is_refused_with_409(node: DaemonProcess, clips_dir: Path) -> None:
    job = _running(node, clips_dir / "bedroom.mp4", "busy")
    with pytest.raises(ApiError) as refused:
        node.client.retry(job["id"])
    assert refused.value.status == 409 and "running" in str(refused.value)
    assert node.job(job["id"])["state"] == "running"
    node.client.cancel(job["id"])
    assert node.client.retry(job["id"])["state"] == "queued", "a cancelled job may be retried"
    node.client.cancel(job["id"])


# --- no loop of its own outputs --------------------------------------------------------


def test_no_output_goes_into_a_watch_folder(node: DaemonProcess, small_clip: Path) -> None:
    with pytest.raises(ApiError) as refused:
        node.client.submit(str(small_clip), output_dir=str(node.media / "incoming" / "mattes"))
    assert refused.value.status == 400 and "output_dir" in str(refused.value) and "watch folder" in str(refused.value)
    parked = node.media / "timelines" / "parked.mp4"  # in a watch folder that does not take clips itself
    shutil.copy(small_clip, parked)
    job = node.client.submit(str(parked))
    assert Path(job["output_dir"]) == (node.media / "output").resolve(), "the watch folder's output, not beside"
    done = node.wait_done(job["id"])
    assert all(Path(path).parent == (node.media / "output").resolve() for path in done["outputs"])
    time.sleep(2)  # a settle period: nothing of the render is taken as an input
    in_folder = [p.name for p in (node.media / "timelines").iterdir() if p.name != CLAIM_FILE]  # the node's claim
    assert in_folder == ["parked.mp4"]
    assert [j["input"] for j in node.jobs() if "parked" in Path(j["input"]).name] == [str(parked.resolve())]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"watch": [{"path": "media/a", "kind": "clip", "output": "media/b"},
                    {"path": "media/b", "kind": "clip", "output": "media/c"}]}, "watch[0].output"),  # fmt: skip
        ({"state_dir": "media/incoming/.state"}, "state_dir"),
    ],
)
def test_a_config_that_would_feed_the_node_its_own_files_is_refused(
    tmp_path: Path, change: dict, named: str
) -> None:
    path = write_config(tmp_path, port=free_port())
    config = yaml.safe_load(path.read_text())
    config.update(change)
    path.write_text(yaml.safe_dump(config))
    result = run_installed("daemon", "--config", str(path), timeout_s=60)
    line = _error_line(result)
    assert result.returncode == 2 and line.startswith(f"error: {named}: ") and "inside the watch folder" in line
    assert not (tmp_path / "state" / "jobs.sqlite").exists()


# --- clear outcomes --------------------------------------------------------------------


def test_a_timeline_whose_clips_are_all_skipped_fails_naming_them(
    node: DaemonProcess, clips_dir: Path, tmp_path: Path
) -> None:
    outside = short_clip(clips_dir / "bedroom.mp4", tmp_path / "outside.mp4", 8)
    notes = node.media / "notes.txt"
    notes.write_text("not a video\n")
    track = otio.schema.Track("V1")
    for name, media in (("outside shot", outside), ("notes shot", notes)):
        available = otio.opentime.TimeRange(duration=otio.opentime.RationalTime(8, 24))
        track.append(otio.schema.Clip(name, otio.schema.ExternalReference(str(media), available), available))
    timeline = otio.schema.Timeline("nothing to matte", tracks=[track])
    document = json.loads(otio.adapters.write_to_string(timeline, "otio_json"))
    job = node.client.submit(otio=document, output_dir=str(node.media / "skipped"))
    job = node.client.wait(job["id"], poll_s=0.2, timeout_s=60)
    assert job["state"] == "failed", job
    assert "'outside shot'" in job["error"] and "'notes shot'" in job["error"] and "\n" not in job["error"]


def test_a_slow_copy_that_reads_as_truncated_waits_for_its_next_settle(
    node: DaemonProcess, clips_dir: Path, tmp_path: Path
) -> None:
    data = short_clip(clips_dir / "bedroom.mp4", tmp_path / "slow.mp4", 24, fast_start=True).read_bytes()
    target = node.media / "incoming" / "trickle.mp4"
    chunk = len(data) // 6 + 1
    with target.open("wb") as handle:
        for start in range(0, len(data), chunk):
            handle.write(data[start : start + chunk])
            handle.flush()
            time.sleep(2.0)  # longer than settle_seconds: each partial copy settles and reads as truncated
    (job,) = wait_for(lambda: [j for j in node.jobs_for("trickle.mp4") if j["state"] == "done"], 180,
                      "the complete copy to be rendered")  # fmt: skip
    assert json.loads(Path(job["outputs"][0]).read_text())["frames"] == 24
    assert [j for j in node.jobs_for("trickle.mp4") if j["state"] == "failed"] == []
    assert not (node.media / "output" / "trickle.error.txt").exists()


def test_a_folder_of_images_is_submitted_as_its_sequence(node: DaemonProcess, clips_dir: Path) -> None:
    folder = node.media / "plate"
    folder.mkdir()
    with open_reader(probe(clips_dir / "bedroom.mp4"), 0, 5) as reader:
        for frame in reader:
            image = av.VideoFrame.from_ndarray(frame.rgb, format="rgb24").reformat(width=480, height=270)
            image.to_image().save(folder / f"shot.{1001 + frame.index}.png")
    job = node.client.submit(str(folder), output_dir=str(node.media / "plate-mattes"))
    assert job["input"] == str(folder.resolve() / "shot.%04d.png")
    manifest = json.loads(Path(node.wait_done(job["id"])["outputs"][0]).read_text())
    exr = next(o for o in manifest["outputs"] if o["format"] == "exr")
    assert manifest["frames"] == 6 and (exr["first_frame"], exr["last_frame"]) == (1001, 1006)


def test_errors_name_the_daemons_settings_not_cli_flags(
    node: DaemonProcess, small_clip: Path, clips_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ApiError) as refused:
        node.client.submit(str(small_clip), preset={"background": "no-such-colour"})
    assert "preset.background" in str(refused.value) and "--background" not in str(refused.value)
    blocker = _running(node, clips_dir / "bedroom.mp4", "blocker")
    target = node.media / "vanished"
    job = node.client.submit(str(small_clip), output_dir=str(target))
    target.rmdir()
    target.write_text("a file where the output folder was\n")
    node.client.cancel(blocker["id"])
    job = node.client.wait(job["id"], poll_s=0.2, timeout_s=60)
    assert job["state"] == "failed" and str(target) in job["error"] and "(-o)" not in job["error"], job
    path = write_config(tmp_path, port=free_port())
    config = yaml.safe_load(path.read_text())
    config["weights"] = "missing.pth"
    path.write_text(yaml.safe_dump(config))
    line = _error_line(run_installed("daemon", "--config", str(path), timeout_s=120))
    assert f"(from weights in {path})" in line and "--weights" not in line


def test_failed_jobs_drop_their_speed_and_time_left(node: DaemonProcess, clips_dir: Path) -> None:
    job = _running(node, clips_dir / "bedroom.mp4", "cut-short")
    assert job["fps"] is not None
    source = Path(job["input"])
    os.truncate(source, source.stat().st_size // 2)
    job = node.client.wait(job["id"], poll_s=0.2, timeout_s=120)
    assert job["state"] == "failed", job
    assert (job["fps"], job["eta_s"]) == (None, None)


def test_a_relative_path_is_refused(node: DaemonProcess, small_clip: Path) -> None:
    for fields in ({"path": small_clip.name}, {"path": str(small_clip), "output_dir": "mattes"}):
        with pytest.raises(ApiError) as refused:
            node.client.submit(**fields)
        assert refused.value.status == 422 and "relative" in str(refused.value) and "absolute" in str(refused.value)


# --- the client ------------------------------------------------------------------------


@pytest.fixture
def html_server() -> Iterator[str]:
    """A web server that answers every GET with an HTML page and 200, as a wrong port often does."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            body = b"<!doctype html><title>Router</title><p>Welcome</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


#: prctl(2): drop a capability from the bounding set (the process and what it runs lose it for good).
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


def _as_a_user_who_cannot_read_others_files() -> None:
    """In the child before exec: root without the capabilities that let it read any file (a user's view)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)


def _status(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(installed_rvm_render()), "status", *args], capture_output=True, text=True, env=env,
                          timeout=120, preexec_fn=_as_a_user_who_cannot_read_others_files)  # fmt: skip


def test_client_problems_are_one_line_errors(html_server: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RVM_RENDER_URL", "RVM_RENDER_TOKEN")}
    result = _status({**env, "RVM_RENDER_URL": "notaurl", "RVM_RENDER_TOKEN": TOKEN})
    assert result.returncode == 1 and "'notaurl' is not a URL" in _error_line(result)
    result = _status({**env, "RVM_RENDER_URL": html_server, "RVM_RENDER_TOKEN": TOKEN})
    assert result.returncode == 1 and "not the rvm-render API's JSON" in _error_line(result)
    token = tmp_path / "state" / "token"
    token.parent.mkdir()
    token.write_text("secret\n")
    token.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(token, 65534, 65534)  # the daemon's user (nobody), not the one asking
    else:
        token.chmod(0o000)
    (tmp_path / "node.yaml").write_text(yaml.safe_dump({"state_dir": "state", "media_roots": ["media"]}))
    result = _status(env, "--config", str(tmp_path / "node.yaml"))
    assert result.returncode == 2 and f"cannot read the daemon's token '{token}'" in _error_line(result)


def test_matte_takes_a_clip_whose_timestamps_are_all_0_in_frame_order(
    clips_dir: Path, tmp_path: Path, tfjs_weights: Path
) -> None:
    flags = ("--downsample-ratio", "0.25", "--frames", "3-9", "--device", "cpu")
    stamped = short_clip(clips_dir / "bedroom.mp4", tmp_path / "stamped.mp4", 12)
    assert matte([stamped], tmp_path / "reference", tfjs_weights, "--formats", "exr", *flags) == 0
    clip = short_clip(clips_dir / "bedroom.mp4", tmp_path / "stamped0.mp4", 12, same_pts=True)
    result = run_installed("-q", "matte", str(clip), "-o", str(tmp_path / "out"), "--weights", str(tfjs_weights),
                           "--formats", "prores4444,exr", *flags)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rate = probe(stamped).rate
    assert Fraction(json.loads((tmp_path / "out" / "stamped0.rvm.json").read_text())["fps"]) == rate
    movie = probe(tmp_path / "out" / "stamped0_matte.mov")
    assert (movie.frames, movie.rate) == (7, rate)
    frames = range(3, 10)  # frame 3 of the one-timestamp clip is frame 3 of the clip it was remuxed from
    np.testing.assert_array_equal(exr_alphas(tmp_path / "out" / "stamped0_matte.%06d.exr", frames),
                                  exr_alphas(tmp_path / "reference" / "stamped_matte.%06d.exr", frames))  # fmt: skip
