"""The Nuke plug-in against strict fakes of ``nuke``/``nukescripts``/``hiero`` and a real daemon rendering real clips.

The script: a movie Read (8 real frames, trimmed to Nuke frames 3-6) and an EXR plate numbered
1001-1006, side by side. The user clicks the plug-in's menu items (registered by running the real
``menu.py``); the test's loop plays Nuke's event loop, running what the plug-in hands to the main
thread, while the daemon renders.
"""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import OpenEXR
import opentimelineio as otio
import pytest

from fakes.hiero import HieroHost, Sequence, TrackItem
from fakes.nuke import NukeHost
from rvm_render.api.client import TOKEN_ENV, URL_ENV
from rvm_render.media.probe import probe
from rvm_render.media.reader import open_reader
from support.daemon import TOKEN, DaemonProcess, free_port
from support.frames import short_clip

PLUGIN = Path(__file__).resolve().parents[2] / "integrations" / "nuke"
OUTPUT_DIR_ENV = "RVM_RENDER_OUTPUT_DIR"
MATTE = "Render/RVM Render/Matte selected Reads"
PANEL = "Render/RVM Render/Jobs panel"
MOVIE_FRAMES = 8
PLATE_FIRST, PLATE_FRAMES = 1001, 6


@pytest.fixture(scope="module")
def shots(node: DaemonProcess, clips_dir: Path) -> Path:
    """``juggle.mp4`` (8 real frames), ``plate/bedroom.1001-1006.exr``; a truncated ``broken.mp4`` and a copy of
    the plate whose frame 1004 is truncated (``broken_plate/``), as a render that died leaves them."""
    folder = node.config.parent / "media" / "shots"
    (folder / "plate").mkdir(parents=True)
    movie = short_clip(clips_dir / "05_default_juggle.mp4", folder / "juggle.mp4", MOVIE_FRAMES)
    (folder / "broken.mp4").write_bytes(movie.read_bytes()[:3000])
    with open_reader(probe(clips_dir / "bedroom.mp4"), 0, PLATE_FRAMES - 1) as reader:
        for frame in reader:
            picture = av.VideoFrame.from_ndarray(frame.rgb, format="rgb24").reformat(width=320, height=180)
            rgb = picture.to_ndarray().astype(np.float32) / 255
            channels = {name: rgb[..., i].astype(np.float16) for i, name in enumerate("RGB")}
            header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
            OpenEXR.File(header, channels).write(str(folder / "plate" / f"bedroom.{PLATE_FIRST + frame.index}.exr"))
    shutil.copytree(folder / "plate", folder / "broken_plate")
    truncated = folder / "broken_plate" / "bedroom.1004.exr"
    truncated.write_bytes(truncated.read_bytes()[:200])
    return folder


def _forget_plugin() -> None:
    for name in [name for name in sys.modules if name.startswith("rvm_render_nuke")]:
        del sys.modules[name]


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Iterator[NukeHost]:
    """A Nuke session: the fake modules installed, the plug-in imported fresh against them."""
    host = NukeHost()
    monkeypatch.setitem(sys.modules, "nuke", host.nuke)
    monkeypatch.setitem(sys.modules, "nukescripts", host.nukescripts)
    monkeypatch.delenv(OUTPUT_DIR_ENV, raising=False)
    _forget_plugin()
    yield host
    _forget_plugin()


@pytest.fixture
def daemon_env(node: DaemonProcess, monkeypatch: pytest.MonkeyPatch) -> DaemonProcess:
    monkeypatch.setenv(URL_ENV, node.client.url)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return node


def _start_session(host: NukeHost) -> ModuleType:
    """Nuke starting: ``init.py`` then ``menu.py``; the plug-in's matte_reads module, polling fast."""
    runpy.run_path(str(PLUGIN / "init.py"))
    runpy.run_path(str(PLUGIN / "menu.py"))
    matte_reads = sys.modules["rvm_render_nuke.matte_reads"]
    matte_reads.POLL_S = 0.2
    return matte_reads


def _finish(host: NukeHost, jobs: list, timeout_s: float = 180) -> None:
    """Run the event loop until every job's thread has ended and nothing is left to run."""
    host.pump(lambda: all(not job.thread.is_alive() for job in jobs) and host.calls.empty(), timeout_s)
    assert host.errors == [] and host.violations == []


def _shown_range(host: NukeHost, read) -> range:
    """The timeline frames where a Read shows its first..last frames."""
    first, last = host.value_of(read, "first"), host.value_of(read, "last")
    mode, frame = host.value_of(read, "frame_mode"), host.value_of(read, "frame")
    shift = int(frame) - first if mode == "start at" else int(frame or 0) if mode == "offset" else 0
    return range(first + shift, last + shift + 1)


def _boxes_overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_two_reads_get_matte_trees_with_their_frame_ranges(host: NukeHost, daemon_env: DaemonProcess,
                                                            shots: Path) -> None:  # fmt: skip
    _start_session(host)
    movie = host.add_node("Read", file=str(shots / "juggle.mp4"), first=3, last=6, origfirst=1, origlast=MOVIE_FRAMES)
    plate_last = PLATE_FIRST + PLATE_FRAMES - 1
    plate = host.add_node("Read", file=str(shots / "plate" / "bedroom.####.exr"), first=PLATE_FIRST, last=plate_last,
                          origfirst=PLATE_FIRST, origlast=plate_last)  # fmt: skip
    plate.setXYpos(200, 0)  # close beside the movie: the movie's tree must find another column
    grade = host.add_node("Grade")
    grade.setXYpos(0, 150)  # the user's own branch under the movie Read
    grade.setInput(0, movie)
    host.select(movie, plate)
    panel = host.command("Nuke", PANEL)()
    jobs = host.command("Nuke", MATTE)()
    assert [job.source.read_name for job in jobs] == ["Read1", "Read2"]
    _finish(host, jobs)

    assert host.messages == []
    user_nodes = {movie, plate, grade}
    for read, job, numbers in ((movie, jobs[0], range(2, 6)), (plate, jobs[1], range(PLATE_FIRST, plate_last + 1))):
        matte_read, copy, premult = (host.node(name) for name in job.nodes)
        assert [host.class_of(n) for n in (matte_read, copy, premult)] == ["Read", "Copy", "Premult"]
        # every EXR the daemon numbered is where the matte Read looks, and only those
        pattern = host.value_of(matte_read, "file")
        assert (host.value_of(matte_read, "first"), host.value_of(matte_read, "last")) == (numbers[0], numbers[-1])
        assert sorted(Path(pattern).parent.glob(f"{Path(pattern).name.split('.')[0]}.*.exr")) == [
            Path(pattern % n) for n in numbers
        ]
        # frame for frame, the matte of the source frame the Read shows
        assert _shown_range(host, matte_read) == _shown_range(host, read)
        movie_offset = 0 if read is plate else 1  # Nuke's movie frame f is the daemon's index f - 1
        for frame in _shown_range(host, read):
            source_frame = host.file_frame_shown(read, frame)
            assert host.file_frame_shown(matte_read, frame) == source_frame - movie_offset, frame
        assert host.value_of(matte_read, "raw") is True and host.value_of(matte_read, "premultiplied") is False
        # wiring: source -> B, matte -> A, Copy -> Premult, alpha into alpha
        assert host.input_of(copy, 0) is read and host.input_of(copy, 1) is matte_read
        assert host.input_of(premult, 0) is copy
        assert (host.value_of(copy, "from0"), host.value_of(copy, "to0")) == ("rgba.alpha", "rgba.alpha")
        # beside the source: a column to its right, from its row down, over no other node
        x, y = host.position_of(read)
        column = [host.position_of(n) for n in (matte_read, copy, premult)]
        assert {cx for cx, _ in column} == {column[0][0]} and column[0][0] > x
        assert column[0][1] == y and column[0][1] < column[1][1] < column[2][1]
        tree = {matte_read, copy, premult}
        for n in tree:
            for other in set(host.nodes) - tree:
                box = (*host.position_of(n), 80, 78)
                other_box = (*host.position_of(other), 80, 78 if host.class_of(other) == "Read" else 18)
                assert not _boxes_overlap(box, other_box), (n, other)
    assert user_nodes | {host.node(name) for job in jobs for name in job.nodes} == set(host.nodes)
    assert host.input_of(grade, 0) is movie, "the user's own branch stays as it was"
    # the daemon rendered exactly the Reads' ranges
    assert [daemon_env.job(job.job_id)["frames_total"] for job in jobs] == [4, PLATE_FRAMES]
    # progress shown to the end, and the panel lists both jobs as done
    for job in jobs:
        (task,) = [t for t in host.progress_tasks if t.title == f"RVM Render: {job.source.read_name}"]
        assert task.progress[-1] == 100 and task.messages[-1].startswith(f"job {job.job_id} done")
    listed = panel.knobs()["jobs"].value().splitlines()
    assert [line.split(" ")[0] for line in listed] == ["Read1", "Read2"] and all(": done: " in line for line in listed)


def test_run_again_on_a_read_updates_its_matte_tree(host: NukeHost, daemon_env: DaemonProcess, shots: Path) -> None:
    _start_session(host)
    movie = host.add_node("Read", file=str(shots / "juggle.mp4"), first=3, last=6, origfirst=1, origlast=MOVIE_FRAMES)
    host.select(movie)
    first = host.command("Nuke", MATTE)()
    _finish(host, first)
    host.select(movie)
    second = host.command("Nuke", MATTE)()
    _finish(host, second)
    assert host.messages == [] and second[0].nodes == first[0].nodes
    assert len(host.nodes) == 4  # the Read and its one tree
    matte_read = host.node(first[0].nodes[0])
    for frame in _shown_range(host, movie):
        assert host.file_frame_shown(matte_read, frame) == host.file_frame_shown(movie, frame) - 1


def test_a_matte_tree_takes_a_new_range_and_file(host: NukeHost, tmp_path: Path) -> None:
    """The tree an earlier run built, given the matte of a changed Read: its nodes, pointed at the new frames."""
    matte_reads = _start_session(host)
    movie = host.add_node("Read", file=str(tmp_path / "take.mov"), first=3, last=6, origfirst=1, origlast=12)
    settings = matte_reads.Settings(output_dir=str(tmp_path))
    earlier = matte_reads.matte_tree(movie, matte_reads.source_of_read(movie, settings),
                                     matte_reads.Matte(str(tmp_path / "take_matte.%06d.exr"), 2, 5))  # fmt: skip
    for knob, value in (("first", 2), ("last", 9), ("frame_mode", "offset"), ("frame", "10")):
        movie[knob].setValue(value)
    source = matte_reads.source_of_read(movie, settings)
    new = matte_reads.Matte(str(tmp_path / "take_000001-000008_matte.%06d.exr"), 1, 8)
    assert matte_reads.matte_tree(movie, source, new) == earlier
    assert len(host.nodes) == 4
    matte_read = earlier[0]
    assert host.value_of(matte_read, "file") == new.pattern
    assert (host.value_of(matte_read, "first"), host.value_of(matte_read, "last")) == (1, 8)
    assert _shown_range(host, matte_read) == _shown_range(host, movie) == range(12, 20)
    for frame in _shown_range(host, movie):
        assert host.file_frame_shown(matte_read, frame) == host.file_frame_shown(movie, frame) - 1


def test_the_ui_keeps_running_while_a_job_renders(host: NukeHost, daemon_env: DaemonProcess, shots: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    output = shots.parent / "elsewhere"
    monkeypatch.setenv(OUTPUT_DIR_ENV, str(output))
    matte_reads = _start_session(host)
    seen_in_main_loop: list[str] = []
    matte_reads.on_change.append(lambda: seen_in_main_loop.extend(job.status for job in matte_reads.JOBS))
    read = host.add_node("Read", file=str(shots / "juggle.mp4"), first=1, last=MOVIE_FRAMES)
    host.select(read)

    clicked = time.monotonic()
    (job,) = host.command("Nodes", "RVM Render/Matte selected Reads")()
    returned_s = time.monotonic() - clicked
    assert job.thread.is_alive() and host.nodes == [read], "the command returned while the job goes on"
    _finish(host, [job])

    record = daemon_env.job(job.job_id)
    assert record["state"] == "done" and record["frames_total"] == MOVIE_FRAMES
    assert record["finished_at"] - record["created_at"] > 5 * returned_s, "the render outlasted the click by far"
    # the main loop ran the job's updates while the daemon was still rendering: it was never blocked
    running = [status for status in seen_in_main_loop if " running" in status]
    assert running and seen_in_main_loop.index(running[0]) < seen_in_main_loop.index(job.status)
    assert job.status.startswith("done:") and host.violations == []
    assert Path(host.value_of(host.node(job.nodes[0]), "file")).parent == output


def test_cancel_on_the_progress_bar_cancels_the_job(host: NukeHost, daemon_env: DaemonProcess, shots: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv(OUTPUT_DIR_ENV, str(shots.parent / "cancelled"))
    _start_session(host)
    host.cancel_new_tasks = True
    read = host.add_node("Read", file=str(shots / "juggle.mp4"), first=1, last=MOVIE_FRAMES)
    host.select(read)
    (job,) = host.command("Nuke", MATTE)()
    _finish(host, [job])

    assert daemon_env.job(job.job_id)["state"] == "cancelled"
    assert job.status == f"job {job.job_id} cancelled" and host.messages == [] and host.nodes == [read]


def test_a_failed_job_reaches_the_user_naming_the_file_and_why(host: NukeHost, daemon_env: DaemonProcess,
                                                               shots: Path) -> None:  # fmt: skip
    _start_session(host)
    broken = host.add_node("Read", file=str(shots / "broken_plate" / "bedroom.####.exr"), first=1001, last=1006)
    host.select(broken)
    (job,) = host.command("Nuke", MATTE)()
    _finish(host, [job])

    record = daemon_env.job(job.job_id)
    assert record["state"] == "failed" and "bedroom.1004.exr" in record["error"], record
    (message,) = host.messages
    assert "Read1" in message and str(shots / "broken_plate" / "bedroom.%04d.exr") in message
    assert record["error"] in message and job.status == f"failed: {record['error']}"
    assert host.nodes == [broken]


def test_a_file_the_daemon_refuses_reaches_the_user(host: NukeHost, daemon_env: DaemonProcess, shots: Path) -> None:
    _start_session(host)
    broken = host.add_node("Read", file=str(shots / "broken.mp4"), first=1, last=MOVIE_FRAMES)
    host.select(broken)
    (job,) = host.command("Nuke", MATTE)()
    _finish(host, [job])

    assert job.job_id is None, "refused when submitted"
    (message,) = host.messages
    assert message.startswith(f"RVM Render could not matte Read1 ({shots / 'broken.mp4'}):\nHTTP 400: ")
    assert "cannot read" in message and host.nodes == [broken]


def test_an_unreachable_daemon_reaches_the_user(host: NukeHost, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The daemon's URL from the installer's settings.json (no RVM_RENDER_URL), and nothing answers there."""
    monkeypatch.delenv(URL_ENV, raising=False)
    url = f"http://127.0.0.1:{free_port()}"
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"url": url, "token": "t"}))
    matte_reads = _start_session(host)
    monkeypatch.setattr(matte_reads, "SETTINGS_PATH", str(settings))
    read = host.add_node("Read", file=str(tmp_path / "take.mov"), first=1, last=24)
    host.select(read)
    (job,) = host.command("Nuke", MATTE)()
    _finish(host, [job], timeout_s=60)

    (message,) = host.messages
    assert "Read1" in message and str(tmp_path / "take.mov") in message
    assert f"cannot reach the rvm-render daemon at {url}" in message and job.status.startswith("failed:")


def test_settings_come_from_the_environment_over_the_installers_file(
    host: NukeHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    matte_reads = _start_session(host)
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"url": "http://file:1", "token": "file-token", "output_dir": "/file"}))
    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.setenv(TOKEN_ENV, "env-token")
    assert matte_reads.Settings.load(str(path)) == matte_reads.Settings("http://file:1", "env-token", "/file")
    assert matte_reads.Settings.load(str(tmp_path / "none.json")) == matte_reads.Settings(None, "env-token", None)
    path.write_text("[]")
    with pytest.raises(ValueError, match="no JSON object"):
        matte_reads.Settings.load(str(path))


def test_reads_that_cannot_be_submitted_are_named_and_nothing_starts(host: NukeHost, tmp_path: Path) -> None:
    matte_reads = _start_session(host)
    host.command("Nuke", MATTE)()
    assert host.messages == ["RVM Render: select one or more Read nodes first"]

    empty = host.add_node("Read")
    doubled = host.add_node("Read", file=str(tmp_path / "shot.%04d.exr"), first=1, last=10, frame="frame*2")
    host.select(empty, doubled)
    assert host.command("Nuke", MATTE)() == []
    message = host.messages[-1]
    assert "Read1 has no file" in message and "Read2" in message and "'frame*2' cannot be followed" in message
    assert matte_reads.JOBS == [] and not [t for t in threading.enumerate() if t.name.startswith("rvm-render")]


@pytest.mark.parametrize(("knobs", "shown_first"), [({}, 1001), ({"frame_mode": "start at", "frame": "1"}, 1),
                                                    ({"frame_mode": "offset", "frame": "-990"}, 11)])  # fmt: skip
def test_a_read_becomes_a_job_with_its_frame_numbers(host: NukeHost, knobs: dict, shown_first: int) -> None:
    matte_reads = _start_session(host)
    read = host.add_node("Read", file="/plates/a.####.exr", first=1001, last=1010, **knobs)
    source = matte_reads.source_of_read(read, matte_reads.Settings())
    assert (source.file, source.frames, source.is_sequence) == ("/plates/a.%04d.exr", "1001-1010", True)
    assert source.shown_first_frame == shown_first == host_shown_first(host, read)
    assert source.output_dir == "/plates/rvm_mattes"
    assert matte_reads.daemon_path("/show/#12/a.##.dpx") == ("/show/#12/a.%02d.dpx", True)
    movie = host.add_node("Read", file="/plates/take.mov", first=5, last=9)
    movie = matte_reads.source_of_read(movie, matte_reads.Settings(output_dir="/mattes"))
    assert movie.output_dir == "/mattes"
    assert (movie.file, movie.frames, movie.is_sequence, movie.shown_frame(4)) == ("/plates/take.mov", "4-8", False, 5)


def host_shown_first(host: NukeHost, read) -> int:
    """The timeline frame showing the Read's ``first`` file frame (and the next one after it), by the fake's model."""
    first = host.value_of(read, "first")
    shown = {f: host.file_frame_shown(read, f) for f in range(-5000, 5000)}
    return next(f for f in range(-5000, 4999) if (shown[f], shown[f + 1]) == (first, first + 1))


def test_the_fake_refuses_node_access_off_the_main_thread(host: NukeHost) -> None:
    """What makes ``violations == []`` above mean something: a touch from a worker thread is caught."""
    read = host.add_node("Read")
    errors: list[Exception] = []

    def touch() -> None:
        try:
            read["first"].value()
        except RuntimeError as err:
            errors.append(err)

    worker = threading.Thread(target=touch, name="worker")
    worker.start()
    worker.join()
    assert len(errors) == 1 and host.violations == ["Read1.['first'] from thread 'worker'"]
    with pytest.raises(NameError):
        read["nope"]
    with pytest.raises(TypeError):
        read["first"].setValue("1001")
    with pytest.raises(AttributeError):
        host.nuke.createNode  # noqa: B018 (not in the surface the plug-in may use)


@pytest.mark.parametrize("deployed", ["installed", "checkout"])
def test_the_plugin_loads_on_the_standard_library_alone(deployed: str, tmp_path: Path) -> None:
    """``NUKE_PATH`` at the ``install nuke`` output (vendored client) or at the checkout's ``integrations/nuke``
    (the checkout's client): menu.py runs on the client and Python's own modules."""
    from rvm_render.integrations.install import install

    folder = install("nuke", tmp_path / "nuke_path").entry if deployed == "installed" else PLUGIN
    probe_script = f"""
import json, runpy, sys
sys.path[:0] = [{str(folder)!r}, {str(Path(__file__).parents[1])!r}]
from fakes.nuke import NukeHost
host = NukeHost()
sys.modules["nuke"], sys.modules["nukescripts"] = host.nuke, host.nukescripts
before = set(sys.modules)
runpy.run_path({str(folder / "init.py")!r})
runpy.run_path({str(folder / "menu.py")!r})
loaded = {{name: getattr(sys.modules[name], "__file__", None) for name in set(sys.modules) - before}}
print(json.dumps({{"loaded": loaded, "menus": {{k: sorted(m.items) for k, m in host.menus.items()}}}}))
"""
    result = subprocess.run([sys.executable, "-I", "-S", "-c", probe_script], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    ours = {name: path for name, path in report["loaded"].items() if name.split(".")[0].startswith("rvm_render")}
    assert set(ours) >= {"rvm_render.api.client", "rvm_render_nuke.matte_reads"}
    home = folder if deployed == "installed" else PLUGIN.parents[1]
    assert all(Path(path).is_relative_to(home) for path in ours.values()), ours
    others = {name.split(".")[0] for name in report["loaded"]} - set(ours)
    assert others <= set(sys.stdlib_module_names), others - set(sys.stdlib_module_names)
    assert report["menus"]["Nodes"] == ["RVM Render/Jobs panel", "RVM Render/Matte selected Reads"]


def test_init_py_adds_nothing(host: NukeHost) -> None:
    runpy.run_path(str(PLUGIN / "init.py"))
    assert [menu.items for menu in host.menus.values()] == [{}, {}] and host.nodes == []
    assert "rvm_render_nuke.matte_reads" not in sys.modules


@pytest.fixture
def hiero(host: NukeHost, monkeypatch: pytest.MonkeyPatch) -> HieroHost:
    hiero = HieroHost(host)
    for name, module in hiero.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    host.env["studio"] = True
    return hiero


def test_nuke_studio_mattes_the_current_sequence_as_a_timeline_job(
    host: NukeHost, hiero: HieroHost, daemon_env: DaemonProcess, shots: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = shots.parent / "edit_mattes"
    monkeypatch.setenv(OUTPUT_DIR_ENV, str(output))
    _start_session(host)
    hiero.active_sequence = Sequence("edit", 24.0, [TrackItem(shots / "juggle.mp4", 2, 10, 4)])
    job = host.command("Nuke", "Render/RVM Render/Matte current sequence")()
    assert job.thread.is_alive()
    host.pump(lambda: not job.thread.is_alive() and host.calls.empty(), 180)
    assert host.errors == [] and host.violations == []

    assert job.job["state"] == "done" and job.job["kind"] == "timeline", job.job
    (message,) = host.messages
    conformed = Path(job.job["outputs"][0])
    assert str(conformed) in message and conformed.is_file() and conformed.parent == output
    timeline = otio.adapters.read_from_file(str(conformed))
    clips = [clip for track in timeline.video_tracks() for clip in track.find_clips()]
    assert len(timeline.video_tracks()) == 2 and len(clips) == 2  # the source and its matte above it


def test_a_hiero_without_an_otio_exporter_says_so(host: NukeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    old = HieroHost(host, exporters=False)
    for name, module in old.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in ("hiero.exporters.FnOTIOExportTask", "hiero.exporters.FnTimelineProcessor"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    _start_session(host)
    old.active_sequence = Sequence("edit", 24.0)
    hiero_export = sys.modules["rvm_render_nuke.hiero_export"]
    assert hiero_export.matte_active_sequence() is None
    (message,) = host.messages
    assert "no OTIO exporter" in message and old.exported == []
