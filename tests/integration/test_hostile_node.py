"""A real ``rvm-render daemon`` under hostile files and requests: it is not knocked over, and serves
nothing from outside its media roots.

Every file and request here took the node down, hung it, answered 500 or leaked a file before:
a name that is not UTF-8, an OTIO document nested 200,000 levels deep (a segfault in the reader),
FIFOs, text and the daemon's own side files in a watch folder, out-of-range fields, a chunked
body over the limit, an output replaced by a link out of the roots, a background outside them,
a full state disk.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import opentimelineio as otio
import pytest

from rvm_render.api.client import ApiError
from support.daemon import TOKEN, DaemonProcess, free_port, raw_request, running_daemon, wait_for, write_config
from support.frames import short_clip

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
DEPTH = 200_000


def _media(daemon: DaemonProcess) -> Path:
    return daemon.config.parent / "media"


def _deep_timeline(path: Path) -> Path:
    """An OTIO timeline whose metadata nests ``DEPTH`` levels deep (OpenTimelineIO's reader overflows its stack)."""
    metadata = '{"a": ' * DEPTH + "{}" + "}" * DEPTH
    path.write_text('{"OTIO_SCHEMA": "Timeline.1", "name": "deep", "metadata": ' + metadata
                    + ', "tracks": {"OTIO_SCHEMA": "Stack.1", "children": []}}')  # fmt: skip
    return path


def _timeline_at_rate_0(clip: Path) -> dict:
    timeline = otio.schema.Timeline(name="rate 0")
    track = otio.schema.Track(name="V1")
    timeline.tracks.append(track)
    zero = otio.opentime.TimeRange(otio.opentime.RationalTime(0, 0), otio.opentime.RationalTime(8, 0))
    track.append(otio.schema.Clip(name="shot010", source_range=zero,
                                  media_reference=otio.schema.ExternalReference(target_url=clip.as_uri())))  # fmt: skip
    return json.loads(otio.adapters.write_to_string(timeline))


def _post(daemon: DaemonProcess, document: dict) -> tuple[int, dict]:
    return raw_request(daemon, "POST", "/jobs", json.dumps(document).encode(), AUTH)


def _chunked_post(daemon: DaemonProcess, size_bytes: int) -> int:
    """Status for a POST whose body comes in 1 MiB chunks without a length."""
    url = urlparse(daemon.client.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.putrequest("POST", "/jobs")
        for name, value in (*AUTH.items(), ("Transfer-Encoding", "chunked")):
            connection.putheader(name, value)
        connection.endheaders()
        chunk = b'{"path": "' + b"x" * (1 << 20)
        try:
            for _ in range(size_bytes // len(chunk) + 1):
                connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            connection.send(b"0\r\n\r\n")
        except OSError:
            pass  # the node answered and closed before the whole body was sent
        return connection.getresponse().status
    finally:
        connection.close()


def _log(daemon: DaemonProcess) -> str:
    """The messages of the node's JSON log, one a line."""
    lines = (daemon.config.parent / "state" / "daemon.log").read_text().splitlines()
    return "\n".join(json.loads(line)["message"] for line in lines)


def test_a_folder_of_hostile_files_does_not_knock_the_node_over_and_it_restarts_with_them_there(
    tmp_path: Path, clips_dir: Path
) -> None:
    port = free_port()
    config = write_config(tmp_path, port=port)
    incoming, timelines = tmp_path / "media" / "incoming", tmp_path / "media" / "timelines"
    clip = short_clip(clips_dir / "bedroom.mp4", tmp_path / "clip.mp4", 8)
    with running_daemon(config, port) as daemon:
        shutil.copy(clip, os.fsdecode(bytes(incoming) + b"/caf\xe9.mp4"))  # a Windows share's Latin-1 name
        os.mkfifo(incoming / "pipe.mp4")
        (incoming / "gone.mp4").symlink_to(tmp_path / "deleted.mp4")  # a link to nothing: the start-up scan died on it
        (incoming / "elsewhere.mp4").symlink_to(clip)  # a link out of the media roots
        (incoming / "notes.txt").write_text("call the DP\n")  # FFmpeg reads text as video
        (incoming / "take.rvm.json").write_text("{}\n")
        (incoming / "take.error.txt").write_text("take.mp4: truncated\n")
        _deep_timeline(timelines / "deep.otio")
        os.mkfifo(timelines / "pipe.otio")
        (timelines / "edit.rvm.otio").write_text(otio.adapters.write_to_string(otio.schema.Timeline()))
        shutil.copy(clip, incoming / "good.mp4")
        (good,) = wait_for(lambda: [j for j in daemon.jobs() if j["input"].endswith("good.mp4")], 60, "good.mp4")
        daemon.wait_done(good["id"])
        deep = wait_for(lambda: [j for j in daemon.jobs() if j["input"].endswith("deep.otio")], 60, "deep.otio")[0]
        deep = daemon.client.wait(deep["id"], poll_s=0.2, timeout_s=60)
        assert deep["state"] == "failed" and "crashed (SIGSEGV)" in deep["error"], deep
        assert daemon.process.poll() is None, "the node is up"
        jobs = {Path(j["input"]).name: j["state"] for j in daemon.jobs()}
        assert jobs == {"good.mp4": "done", "deep.otio": "failed"}, jobs
        log = _log(daemon)
        for name in ("'caf\\udce9.mp4'", "'pipe.mp4'", "'elsewhere.mp4'", "'notes.txt'",
                     "'take.rvm.json'", "'take.error.txt'", "'pipe.otio'", "'edit.rvm.otio'"):  # fmt: skip
            assert any(line.startswith(name) and "ignored" in line for line in log.splitlines()), name
        assert daemon.stop() == 0
    with running_daemon(config, port) as daemon:  # the start-up scan meets every one of them again
        time.sleep(4)  # several settle periods
        assert daemon.process.poll() is None
        assert {Path(j["input"]).name: j["state"] for j in daemon.jobs()} == jobs
        assert daemon.client.health()["status"] == "ok"
        assert daemon.stop() == 0


def test_a_job_the_node_dies_under_three_times_fails_instead_of_being_queued_forever(
    tmp_path: Path, clips_dir: Path
) -> None:
    port = free_port()
    config = write_config(tmp_path, port=port)
    clip = short_clip(clips_dir / "bedroom.mp4", tmp_path / "media" / "long.mp4", 200)
    job_id = 0
    for _ in range(3):
        with running_daemon(config, port) as daemon:
            job_id = job_id or daemon.client.submit(str(clip), output_dir=str(tmp_path / "media" / "out"))["id"]
            wait_for(lambda job_id=job_id: daemon.job(job_id)["state"] == "running", 60, "the job to run")
            daemon.process.send_signal(signal.SIGKILL)  # as a crash on its input would
            daemon.process.wait(timeout=30)
    with running_daemon(config, port) as daemon:
        failed = daemon.job(job_id)
        assert failed["state"] == "failed" and failed["crashes"] == 3, failed
        assert "3 times" in failed["error"] and "\n" not in failed["error"]
        assert f"job {job_id} failed" in _log(daemon)
        retried = daemon.client.retry(job_id)
        assert retried["crashes"] == 0 and retried["state"] in ("queued", "running")


#: Each hostile request: its body, the status it gets, and what the answer must name.
HOSTILE_REQUESTS = ("huge priority", "output_dir a file", "NUL in path", "5000-char path", "300-byte name",
                    "downsample 1e-9", "otio rate 0", "timeline nested too deep")  # fmt: skip


def _hostile_request(name: str, media: Path, clip: Path) -> tuple[dict, int, str]:
    if name == "huge priority":
        return {"path": str(clip), "priority": 99999999999999999999999}, 422, "priority"
    if name == "output_dir a file":
        (media / "a-file").write_text("not a folder\n")
        return {"path": str(clip), "output_dir": str(media / "a-file")}, 400, "is a file"
    if name == "NUL in path":
        return {"path": str(media / "a\u0000b.mp4")}, 422, "NUL"
    if name == "5000-char path":
        return {"path": str(media / ("x" * 5000))}, 422, "bytes long"
    if name == "300-byte name":
        return {"path": str(media / ("x" * 300) / "y.mp4")}, 422, "longer than 255 bytes"
    if name == "downsample 1e-9":
        return {"path": str(clip), "preset": {"downsample_ratio": 1e-9}}, 400, "preset.downsample_ratio"
    if name == "otio rate 0":
        return {"otio": _timeline_at_rate_0(clip), "output_dir": str(media / "out")}, 400, "Clip 'shot010' source_range"
    assert name == "timeline nested too deep"
    return {"path": str(_deep_timeline(media / "deep.otio"))}, 400, "crashed (SIGSEGV)"


@pytest.fixture(scope="module")
def hostile_clip(node: DaemonProcess, clips_dir: Path) -> Path:
    return short_clip(clips_dir / "bedroom.mp4", _media(node) / "hostile.mp4", 8)


@pytest.mark.parametrize("name", HOSTILE_REQUESTS)
def test_a_hostile_request_gets_a_4xx_naming_the_problem(node: DaemonProcess, hostile_clip: Path, name: str) -> None:
    document, status, named = _hostile_request(name, _media(node), hostile_clip)
    answer = _post(node, document)
    assert answer[0] == status and named in json.dumps(answer[1]), answer
    assert node.process.poll() is None and node.client.health()["status"] == "ok"


def test_a_huge_job_id_is_a_422_naming_it(node: DaemonProcess) -> None:
    status, body = raw_request(node, "GET", "/jobs/99999999999999999999", headers=AUTH)
    assert status == 422 and "job_id" in json.dumps(body), body


def test_a_chunked_body_over_the_limit_is_a_413(node: DaemonProcess) -> None:
    assert _chunked_post(node, 17 << 20) == 413
    assert node.client.health()["status"] == "ok"


def test_the_node_serves_on_through_every_hostile_request_at_once(node: DaemonProcess, hostile_clip: Path) -> None:
    media = _media(node)
    requests = [_hostile_request(name, media, hostile_clip) for name in HOSTILE_REQUESTS]
    deep_otio = _deep_timeline(media / "deep-body.otio").read_bytes()  # posted as a document this time
    deep_body = b'{"output_dir": "%s", "otio": %s}' % (str(media / "out").encode(), deep_otio)
    with ThreadPoolExecutor(len(requests) + 3) as pool:
        posted = [pool.submit(_post, node, document) for document, _, _ in requests]
        chunked = pool.submit(_chunked_post, node, 17 << 20)
        huge_id = pool.submit(raw_request, node, "GET", "/jobs/99999999999999999999", None, AUTH)
        deep = pool.submit(raw_request, node, "POST", "/jobs", deep_body, AUTH)
        assert [future.result()[0] for future in posted] == [status for _, status, _ in requests]
        assert (chunked.result(), huge_id.result()[0]) == (413, 422)
        assert 400 <= deep.result()[0] < 500, deep.result()
    assert node.process.poll() is None and node.client.health()["status"] == "ok"


def test_fifos_are_refused_at_once_and_health_answers_meanwhile(node: DaemonProcess) -> None:
    fifos = node.config.parent / "media" / "fifos"
    fifos.mkdir()
    for n in range(40):
        os.mkfifo(fifos / f"take{n:02d}.mp4")
    healthy: list[float] = []
    posting = threading.Event()

    def watch_health() -> None:
        while posting.is_set():
            started = time.monotonic()
            try:
                answered = node.client.health()["status"] == "ok"
            except ApiError:  # timed out
                answered = False
            healthy.append(time.monotonic() - started if answered else float("inf"))
            time.sleep(0.1)

    posting.set()
    watcher = threading.Thread(target=watch_health)
    watcher.start()
    try:
        with ThreadPoolExecutor(40) as pool:
            answers = list(pool.map(lambda n: _post(node, {"path": str(fifos / f"take{n:02d}.mp4")}), range(40)))
    finally:
        posting.clear()
        watcher.join()
    assert all(status == 400 and "not a regular file" in body["detail"] for status, body in answers), answers[0]
    assert healthy and max(healthy) < 5


def test_an_output_replaced_by_a_link_out_of_the_roots_is_not_served(
    node: DaemonProcess, clips_dir: Path, tmp_path: Path
) -> None:
    media = _media(node)
    clip = short_clip(clips_dir / "bedroom.mp4", media / "linked.mp4", 8)
    job = node.wait_done(node.client.submit(str(clip), output_dir=str(media / "linked"))["id"])
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret\n")
    manifest = Path(job["outputs"][0])
    assert raw_request(node, "GET", f"/jobs/{job['id']}/outputs/0", headers=AUTH)[0] == 200
    manifest.unlink()
    manifest.symlink_to(secret)
    status, body = raw_request(node, "GET", f"/jobs/{job['id']}/outputs/0", headers=AUTH)
    assert status == 403 and "outside the media roots" in body["detail"] and "secret" not in json.dumps(body)


def test_a_background_outside_the_media_roots_is_refused_whether_or_not_it_exists(
    node: DaemonProcess, clips_dir: Path, tmp_path: Path
) -> None:
    media = _media(node)
    clip = short_clip(clips_dir / "bedroom.mp4", media / "comp.mp4", 8)
    outside = shutil.copy(clips_dir / "bedroom.mp4", tmp_path / "plate.mp4")
    answers = []
    for background in (str(outside), str(tmp_path / "no-such-plate.mp4")):
        with pytest.raises(ApiError) as refused:
            node.client.submit(str(clip), output_dir=str(media / "comp"),
                               preset={"formats": ["comp"], "background": background})  # fmt: skip
        answers.append((refused.value.status, str(refused.value).replace(background, "BACKGROUND")))
    assert answers[0] == answers[1] and answers[0][0] == 403, answers
    assert "preset.background" in answers[0][1] and "media_roots" in answers[0][1]


def test_a_full_state_disk_is_a_507_saying_so(tmp_path: Path, clips_dir: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    if subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs '{state}'"]).returncode:
        pytest.skip("needs unshare and mount (a private tmpfs for the state dir)")
    port = free_port()
    config = write_config(tmp_path, port=port)
    clip = short_clip(clips_dir / "bedroom.mp4", tmp_path / "media" / "full.mp4", 8)
    mount = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$@"', str(state)]
    with running_daemon(config, port, prefix=mount) as daemon:
        filler = Path(f"/proc/{daemon.process.pid}/root") / state.relative_to("/") / "filler"
        with pytest.raises(OSError), filler.open("wb") as handle:  # the disk of the state dir fills up
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        empty_timeline = json.loads(otio.adapters.write_to_string(otio.schema.Timeline()))
        for document in ({"path": str(clip)}, {"otio": empty_timeline, "output_dir": str(tmp_path / "media")}):
            status, body = _post(daemon, document)
            assert status == 507 and "the node's disk is full" in body["detail"], (status, body)
        assert daemon.client.health()["status"] == "ok"
