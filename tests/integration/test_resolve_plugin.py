"""The DaVinci Resolve plug-in against a strict fake of Resolve's API and a real daemon rendering real clips.

The edit: a 23.976 timeline starting at 01:00:00:00 (frame 86400) with two clips on Video 1:
A (media with timecode 01:00:00:00) at 86400 from its frame 5 for 12 frames, a 4-frame gap,
then B (media without timecode) at 86416 from its frame 3 for 10 frames.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from fakes.resolve import FakeBmd, FakeResolve, FakeTimeline, ResolveApiMisuse, make_resolve
from rvm_render.integrations.install import install, resolve_scripts_dir
from rvm_render_davinci.resolve_matte import ALPHA_MODE_HINT, MATTE_BIN, Settings, main
from support.daemon import TOKEN, DaemonProcess, free_port

RATE = Fraction(24000, 1001)
HOUR = 86400  # 01:00:00:00 at 23.976 (non-drop: 24 frames a second of timecode)
EDITS = [("a.mov", HOUR, 5, 12), ("b.mov", HOUR + 16, 3, 10)]


def _clip_at_23976(source: Path, target: Path, frames: int, timecode: str | None) -> Path:
    """``frames`` real frames of ``source`` re-encoded at 24000/1001 (640x360, H.264), with ``timecode``;
    its index first (faststart), so a truncated copy still probes and fails only when decoded."""
    with av.open(str(source)) as inp, av.open(str(target), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        if timecode:
            stream.metadata["timecode"] = timecode
        for index, frame in enumerate(inp.decode(video=0)):
            if index == frames:
                break
            picture = frame.reformat(width=640, height=360, format="yuv420p")
            picture.pts, picture.time_base = index, 1 / RATE
            out.mux(stream.encode(picture))
        out.mux(stream.encode(None))
    return target


@pytest.fixture(scope="module")
def media(node: DaemonProcess, clips_dir: Path) -> Path:
    folder = node.config.parent / "media" / "edit"
    folder.mkdir(parents=True)
    _clip_at_23976(clips_dir / "05_default_juggle.mp4", folder / "a.mov", 40, "01:00:00:00")
    _clip_at_23976(clips_dir / "01_dog.mp4", folder / "b.mov", 30, None)
    return folder


def _settings(node: DaemonProcess, **changes: object) -> Settings:
    values = {"url": node.client.url, "token": TOKEN, "poll_s": 0.2, "timeout_s": 300.0,
              "preset": {"formats": ["prores4444"], "segment_frames": 1440}}  # fmt: skip
    return Settings(**{**values, **changes})


def _resolve(media: Path, version: tuple[int, int, int]) -> FakeResolve:
    edits = [(str(media / name), record, left, duration) for name, record, left, duration in EDITS]
    return make_resolve(version, "Edit", RATE, HOUR, edits)


def test_mattes_land_on_a_named_track_above_their_sources(node: DaemonProcess, media: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    resolve, bmd = _resolve(media, (19, 0, 3)), FakeBmd()
    report = main(resolve, _settings(node, output_dir=str(media / "mattes")), bmd)

    assert report.job is not None and report.job["state"] == "done", report
    assert report.problems == [] and len(report.placed) == 2
    timeline = resolve.project.current
    assert timeline.GetName() == "Edit" and timeline.GetTrackCount("video") == 2
    assert timeline.GetTrackName("video", 2) == "Video 1 RVM Matte"
    sources, mattes = timeline.GetItemListInTrack("video", 1), timeline.GetItemListInTrack("video", 2)
    assert [m.GetStart() for m in mattes] == [s.GetStart() for s in sources] == [HOUR, HOUR + 16]
    assert [m.GetDuration() for m in mattes] == [s.GetDuration() for s in sources] == [12, 10]
    # The matte movies start at their source's frame 0 (the handles reach it), so the offsets are equal...
    assert [m.GetLeftOffset() for m in mattes] == [s.GetLeftOffset() for s in sources] == [5, 3]
    # ...and each shows the very source frames, by timecode too.
    for source, matte in zip(sources, mattes):
        assert matte.GetMediaPoolItem().GetClipProperty("Start TC") == source.GetMediaPoolItem().GetClipProperty(
            "Start TC")
        assert matte.GetMediaPoolItem().GetClipProperty("File Path").endswith("_matte.mov")
    bins = {folder.GetName(): folder for folder in resolve.project.media_pool.GetRootFolder().GetSubFolderList()}
    in_bin = sorted(Path(c.GetClipProperty("File Path")) for c in bins[MATTE_BIN].GetClipList())
    assert in_bin == sorted((media / "mattes").glob("*_matte.mov")) and len(in_bin) == 2
    assert [path.name.split("_")[0] for path in in_bin] == ["a", "b"]  # a range of each source
    assert resolve.project.media_pool.GetCurrentFolder().GetName() == "Master"  # the user's folder is back

    # The matte is real: ProRes 4444 with an alpha plane that holds the subject.
    with av.open(str(in_bin[0])) as container:
        frame = next(container.decode(video=0))
        assert container.streams.video[0].codec_context.name == "prores"
        alpha = frame.to_ndarray(format="yuva444p16le")[3]
    assert 0.02 < float(np.mean(alpha > 32768)) < 0.98

    (window,) = bmd.dispatchers[0].windows
    status = bmd.dispatchers[0].ui.widgets["Status"].texts
    assert any("frames" in text for text in status), status  # the job's progress reached the window
    assert "2 matte(s) placed in 'Edit'" in status[-1] and ALPHA_MODE_HINT in status[-1]
    assert bmd.dispatchers[0].loops == 1 and not window.shown  # shown until the user closed it
    assert capsys.readouterr().out.count(ALPHA_MODE_HINT) == 1  # told once


def _track_names(timeline: FakeTimeline) -> list[str]:
    return [timeline.GetTrackName("video", i) for i in range(1, timeline.GetTrackCount("video") + 1)]


def _movies(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*_matte.mov")}


def _packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(packet) for packet in container.demux(video=0) if packet.size]


def _matte_bin_files(resolve: FakeResolve) -> list[str]:
    bins = {folder.GetName(): folder for folder in resolve.project.media_pool.GetRootFolder().GetSubFolderList()}
    return sorted(c.GetClipProperty("File Path") for c in bins[MATTE_BIN].GetClipList())


def _assert_mattes_on_their_sources(timeline: FakeTimeline) -> None:
    """Each matte item on a '<track> RVM Matte' track starts, lasts and shows the same frames as its source item."""
    names = _track_names(timeline)
    for index, name in enumerate(names, 1):
        if not name.endswith(" RVM Matte"):
            continue
        sources = timeline.GetItemListInTrack("video", names.index(name.removesuffix(" RVM Matte")) + 1)
        mattes = timeline.GetItemListInTrack("video", index)
        assert len(mattes) == len(sources), name
        for source, matte in zip(sources, mattes):
            first_frame = int(Path(matte.GetMediaPoolItem().GetClipProperty("File Path")).name.split("_")[1][:6])
            assert Path(matte.GetMediaPoolItem().GetClipProperty("File Path")).name.startswith(
                Path(source.GetMediaPoolItem().GetClipProperty("File Path")).stem + "_")
            assert (matte.GetStart(), matte.GetDuration()) == (source.GetStart(), source.GetDuration())
            assert first_frame + matte.GetLeftOffset() == source.GetLeftOffset()


def test_run_again_the_matte_tracks_are_updated_in_place(node: DaemonProcess, media: Path) -> None:
    """Run 1 on two tracks; run 2 unchanged; run 3 after a trim and a new clip: see the closing note."""
    out = media / "mattes_rerun"
    resolve = _resolve(media, (19, 0, 3))
    timeline, pool = resolve.project.current, resolve.project.media_pool
    timeline.AddTrack("video")
    a_media, b_media = pool.ImportMedia([str(media / "a.mov"), str(media / "b.mov")])
    timeline.place(timeline.video[1], a_media, HOUR + 30, 25, 33)  # Video 2: a from frame 25 for 8 frames
    settings = _settings(node, output_dir=str(out))
    names = ["Video 1", "Video 2", "Video 1 RVM Matte", "Video 2 RVM Matte"]

    first = main(resolve, settings)
    assert first.problems == [] and len(first.placed) == 3, first
    assert _track_names(timeline) == names
    _assert_mattes_on_their_sources(timeline)
    movies = _movies(out)
    assert sorted(movies) == ["a_000000-000039_matte.mov", "b_000000-000024_matte.mov"]
    items = [timeline.GetItemListInTrack("video", index) for index in (3, 4)]

    second = main(resolve, settings)
    assert second.problems == [] and len(second.placed) == 3, second
    assert second.job is not None and second.job["frames_done"] == second.job["frames_total"] == 65
    assert _track_names(timeline) == names and _movies(out) == movies
    assert [timeline.GetItemListInTrack("video", index) for index in (3, 4)] == items  # the very same items

    trimmed = timeline.GetItemListInTrack("video", 1)[1]  # b: frames 3..12 -> 4..11, inside its handles
    trimmed.left_offset, trimmed.duration = 4, 8
    timeline.place(timeline.video[1], b_media, HOUR + 40, 26, 30)  # new: b frames 26..29, past the rendered 0..24
    earlier_packets = _packets(out / "b_000000-000024_matte.mov")
    third = main(resolve, settings)
    assert third.problems == [] and len(third.placed) == 4, third
    assert _track_names(timeline) == names
    _assert_mattes_on_their_sources(timeline)
    after = _movies(out)
    # b's matte extended: 0..24 kept as they were, only 25..29 rendered, one matte for both b clips.
    assert after == {"a_000000-000039_matte.mov": movies["a_000000-000039_matte.mov"],
                     "b_000000-000029_matte.mov": after["b_000000-000029_matte.mov"]}  # fmt: skip
    assert _packets(out / "b_000000-000029_matte.mov")[:25] == earlier_packets
    manifest = json.loads((out / "b_000000-000029.rvm.json").read_text())
    assert [(s["first_frame"], s["last_frame"]) for s in manifest["segments"]] == [(0, 24), (25, 29)]
    assert "'b_000000-000029': frames 0-24 kept from" in node.log.read_text()
    v1_mattes, v2_mattes = (timeline.GetItemListInTrack("video", index) for index in (3, 4))
    assert v1_mattes[0] is items[0][0] and v1_mattes[1] not in items[0]  # A stays, B's matte replaced
    assert v2_mattes[0] is items[1][0] and len(v2_mattes) == 2
    assert third.job is not None and third.job["frames_done"] == third.job["frames_total"] == 70
    in_bin = _matte_bin_files(resolve)
    assert in_bin == sorted(str(path) for path in out.glob("*_matte.mov"))  # b's earlier matte left the bin


def test_a_resolve_without_track_placement_imports_the_matted_timeline(node: DaemonProcess, media: Path) -> None:
    resolve = _resolve(media, (18, 5, 1))
    project = resolve.project
    project.timelines.append(type(project.current)(resolve, "Edit RVM Mattes", RATE, HOUR))  # a name in use
    report = main(resolve, _settings(node, output_dir=str(media / "mattes_185")))

    assert report.problems == [] and len(report.placed) == 2, report
    imported = project.GetCurrentTimeline()
    assert imported.GetName() == report.timeline_name == "Edit RVM Mattes 2"
    names = [imported.GetTrackName("video", i) for i in range(1, imported.GetTrackCount("video") + 1)]
    assert names == ["Video 1", "Video 1 RVM Matte"]
    sources, mattes = imported.GetItemListInTrack("video", 1), imported.GetItemListInTrack("video", 2)
    assert [(m.GetStart(), m.GetLeftOffset(), m.GetDuration()) for m in mattes] == [
        (s.GetStart(), s.GetLeftOffset(), s.GetDuration()) for s in sources] == [(HOUR, 5, 12), (HOUR + 16, 3, 10)]
    assert project.GetTimelineByIndex(1).GetItemListInTrack("video", 1)  # the edit itself is untouched
    assert project.GetTimelineByIndex(1).GetTrackCount("video") == 1


def test_a_matte_resolve_puts_elsewhere_is_reported(node: DaemonProcess, media: Path) -> None:
    resolve = _resolve(media, (19, 0, 3))
    timeline = resolve.project.current
    original_place = timeline.place

    def with_a_clip_in_the_way(track, media_item, record, start, end):
        if track is timeline.video[-1] and not track.items:  # someone's clip at 00:59:59:23-01:00:00:01
            original_place(track, media_item, HOUR - 1, 0, 2)
        return original_place(track, media_item, record, start, end)

    timeline.place = with_a_clip_in_the_way
    report = main(resolve, _settings(node, output_dir=str(media / "mattes")))
    assert [p.name for p in report.placed] == ["b.mov RVM Matte"] and len(report.problems) == 1
    assert "matte 'a.mov RVM Matte' did not land at frame 86400 of track 'Video 1 RVM Matte'" in report.problems[0]
    assert "/a_" in report.problems[0] and "_matte.mov" in report.problems[0]


def test_a_failed_job_reaches_the_user(node: DaemonProcess, media: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit = [(str(media / "b.mov"), HOUR, 3, 10)]
    first = main(make_resolve((19, 0, 3), "Edit", RATE, HOUR, edit), _settings(node, output_dir=str(media / "m1")))
    (matte,) = {p.path for p in first.placed}
    theirs = media / "m2" / Path(matte).name  # a file of the same name the user already has: never overwritten
    theirs.parent.mkdir()
    theirs.write_bytes(b"the user's own file")
    resolve, bmd = make_resolve((19, 0, 3), "Edit", RATE, HOUR, edit), FakeBmd()
    report = main(resolve, _settings(node, output_dir=str(theirs.parent)), bmd)

    assert report.job is not None and report.job["state"] == "failed"
    assert report.placed == [] and len(report.problems) == 1
    problem = report.problems[0]
    assert problem.startswith(f"the daemon's job {report.job['id']} failed:") and theirs.name in problem
    assert bmd.dispatchers[0].ui.widgets["Problems"].texts[-1] == problem
    assert f"problem: {problem}" in capsys.readouterr().out
    assert resolve.project.current.GetTrackCount("video") == 1  # nothing was added
    assert theirs.read_bytes() == b"the user's own file"


def test_clips_the_daemon_skipped_are_reported_and_the_rest_placed(
    node: DaemonProcess, media: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.mov"  # outside the daemon's media roots: not matted
    outside.write_bytes((media / "b.mov").read_bytes())
    resolve = make_resolve((19, 0, 3), "Edit", RATE, HOUR, [(str(media / "a.mov"), HOUR, 5, 12),
                                                             (str(outside), HOUR + 12, 0, 6)])  # fmt: skip
    report = main(resolve, _settings(node, output_dir=str(media / "mattes_skipped")))
    assert report.job is not None and report.job["state"] == "done"
    assert [p.name for p in report.placed] == ["a.mov RVM Matte"]
    (problem,) = report.problems
    assert problem.startswith("clip 'outside.mov' (Video 1[1]) was not matted:")
    assert "outside the allowed media roots" in problem


def test_an_unreachable_daemon_and_a_silent_export_failure_are_told(media: Path) -> None:
    resolve = _resolve(media, (19, 0, 3))
    report = main(resolve, Settings(url=f"http://127.0.0.1:{free_port()}", token=TOKEN))
    assert report.job is None and "cannot reach the rvm-render daemon" in report.problems[0]

    timeline = resolve.project.current
    timeline.Export = lambda path, kind, sub: True  # Resolve says yes and writes nothing
    report = main(resolve, Settings(url=f"http://127.0.0.1:{free_port()}", token=TOKEN))
    assert report.problems == [report.problems[0]] and "Resolve did not write the OTIO export" in report.problems[0]

    old = _resolve(media, (18, 1, 4))
    assert "cannot export OpenTimelineIO; update to Resolve 18.5" in main(old, Settings()).problems[0]


def test_the_fake_is_strict() -> None:
    resolve = FakeResolve((19, 0, 3))
    assert hasattr(resolve, "NoSuchMethod") and "NoSuchMethod" not in dir(resolve)
    with pytest.raises(ResolveApiMisuse):
        resolve.NoSuchMethod()
    timeline = make_resolve((19, 0, 3), "t", RATE, 0, []).project.current
    with pytest.raises(ResolveApiMisuse, match="not a resolve.EXPORT_"):
        timeline.Export("/tmp/x.otio", "EXPORT_OTIO", resolve.EXPORT_NONE)
    with pytest.raises(ResolveApiMisuse, match="1-based"):
        timeline.GetItemListInTrack("video", 0)
    with pytest.raises(ResolveApiMisuse, match="unknown"):
        resolve.project.media_pool.AppendToTimeline([{"mediaPoolItem": None, "startFrame": 0, "endFrame": 1,
                                                      "track": 1}])  # fmt: skip


def test_install_puts_the_script_in_the_scripts_menu_and_it_runs_without_rvm_render(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert resolve_scripts_dir("linux", home) == home / ".local/share/DaVinciResolve/Fusion/Scripts"
    assert resolve_scripts_dir("darwin", home) == (
        home / "Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts")
    assert resolve_scripts_dir("win32", home, {"APPDATA": str(tmp_path / "Roaming")}) == (
        tmp_path / "Roaming/Blackmagic Design/DaVinci Resolve/Support/Fusion/Scripts")

    scripts = resolve_scripts_dir("linux", home)
    result = subprocess.run(
        [sys.executable, "-m", "rvm_render.integrations", "install", "resolve", "--dest", str(scripts),
         "--url", "http://render1:8765", "--token", "secret"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    script = scripts / "Utility" / "RVM Render Matte.py"
    assert f"installed the resolve plug-in: {script}" in result.stdout
    assert sorted(p.name for p in (scripts / "Utility").iterdir()) == ["RVM Render Matte.py"]
    support = scripts.parent / "rvm_render_plugin"
    assert json.loads((support / "settings.json").read_text()) == {"url": "http://render1:8765", "token": "secret"}

    # Resolve's Python has no rvm_render, torch or numpy: run the installed script without site-packages.
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "RVM_RENDER_HOME")}
    probe = (
        "import runpy, sys; g = runpy.run_path(sys.argv[1]); status = g['run'](); "
        "heavy = sorted(m for m in ('torch', 'numpy', 'av', 'yaml', 'opentimelineio') if m in sys.modules); "
        "print('status', status, 'heavy', heavy, 'from', sys.modules['rvm_render.api.client'].__file__)"
    )
    ran = subprocess.run([sys.executable, "-S", "-c", probe, str(script)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60)  # fmt: skip
    assert "Resolve is not reachable; run this from Workspace > Scripts" in ran.stdout, ran.stderr
    assert f"status 1 heavy [] from {support}" in ran.stdout

    (scripts / "Utility" / "Other.py").write_text("print('mine')\n")
    install("resolve", scripts)  # again: replaces its own files only
    assert (scripts / "Utility" / "Other.py").read_text() == "print('mine')\n"
    script.write_text("print('not ours')\n")
    with pytest.raises(FileExistsError, match="is not the rvm_render plug-in's"):
        install("resolve", scripts)


@pytest.mark.parametrize("deployed", ["linked", "copied with RVM_RENDER_HOME", "copied"])
def test_the_checkouts_integrations_davinci_in_utility_is_the_menu_entry(deployed: str, tmp_path: Path) -> None:
    """A checkout's ``integrations/davinci`` files put into ``Fusion/Scripts/Utility``: linked, or copied with
    ``RVM_RENDER_HOME`` naming the checkout, the script runs on the checkout's client alone; copied without it, it
    says how to set it up."""
    plugin = Path(__file__).resolve().parents[2] / "integrations" / "davinci"
    utility = resolve_scripts_dir("linux", tmp_path / "home") / "Utility"
    utility.mkdir(parents=True)
    for path in plugin.iterdir():
        if path.name != "__pycache__":
            if deployed == "linked":
                (utility / path.name).symlink_to(path)
            else:
                (shutil.copytree if path.is_dir() else shutil.copy)(path, utility / path.name)
    assert sorted(p.name for p in utility.glob("*.py")) == ["RVM Render Matte.py"]  # the Scripts menu's entries

    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "RVM_RENDER_HOME")}
    if deployed == "copied with RVM_RENDER_HOME":
        env["RVM_RENDER_HOME"] = str(plugin.parents[1])
    probe = (
        "import runpy, sys; g = runpy.run_path(sys.argv[1]); status = g['run'](); "
        "heavy = sorted(m for m in ('torch', 'numpy', 'av', 'yaml', 'opentimelineio') if m in sys.modules); "
        "client = sys.modules.get('rvm_render.api.client'); print('status', status, 'heavy', heavy, 'client', "
        "client and client.__file__)"
    )
    ran = subprocess.run([sys.executable, "-S", "-c", probe, str(utility / "RVM Render Matte.py")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)  # fmt: skip
    if deployed != "copied":
        assert "Resolve is not reachable; run this from Workspace > Scripts" in ran.stdout, ran.stderr
        client = plugin.parents[1] / "rvm_render" / "api" / "client.py"
        assert f"status 1 heavy [] client {client}" in ran.stdout
    else:
        assert "No module named 'rvm_render'" in ran.stdout and "RVM_RENDER_HOME" in ran.stdout, ran
        assert "status 1 heavy [] client None" in ran.stdout
