"""`rvm-render timeline` run again: on the same edit, on its own `.rvm.otio` cut further, with a clip
trimmed past its matte (the matte extended: only the frames it lacks rendered), after the source or
the mattes changed on disk.

Small real media (320x180, 24 fps, re-encoded from the shared clips) keeps each render short:

V1: A1 (a, frames 4..11) | gap 4 | B1 (b, frames 10..17)
V2: gap 6 | A2 (a, frames 30..37)

With 2 handles the plan is a 2..13, a 28..39, b 8..19.
"""

from __future__ import annotations

import json
import os
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import OpenEXR
import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime as RT
from opentimelineio.opentime import TimeRange as TR

from rvm_render.cli.main import main
from rvm_render.media.probe import probe
from rvm_render.media.reader import open_reader
from rvm_render.otio import ConformOptions, plan_timeline
from rvm_render.otio.requests import seconds

RATE = 24
FRAMES = 48
MATTE = " RVM Matte"
FIRST_RUN_MOVIES = {"a_000002-000013_matte.mov", "a_000028-000039_matte.mov", "b_000008-000019_matte.mov"}


def _encoded(source: Path, target: Path, frames: int = FRAMES) -> Path:
    """``frames`` frames of ``source`` re-encoded small (320x180, 24 fps, H.264) into ``target``."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        for number, frame in enumerate(inp.decode(video=0)):
            if number == frames:
                break
            small = frame.reformat(width=320, height=180, format="yuv420p")
            small.pts, small.time_base = number, Fraction(1, RATE)
            out.mux(stream.encode(small))
        out.mux(stream.encode(None))
    return target


def _clip(name: str, media: Path, first: int, frames: int) -> otio.schema.Clip:
    reference = otio.schema.ExternalReference(str(media), TR(RT(0, RATE), RT(FRAMES, RATE)))
    return otio.schema.Clip(name, reference, TR(RT(first, RATE), RT(frames, RATE)))


def _gap(frames: int) -> otio.schema.Gap:
    return otio.schema.Gap(source_range=TR(duration=RT(frames, RATE)))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, clips_dir: Path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    return {
        "a": _encoded(clips_dir / "05_default_juggle.mp4", folder / "a.mov"),
        "b": _encoded(clips_dir / "bedroom.mp4", folder / "b.mov"),
        "other": _encoded(clips_dir / "01_dog.mp4", folder / "other.mov"),
    }


def _edit(media: dict[str, Path], folder: Path) -> Path:
    timeline = otio.schema.Timeline("rerun", global_start_time=RT(0, RATE))
    v1 = otio.schema.Track("V1", kind=otio.schema.TrackKind.Video)
    v1.extend([_clip("A1", media["a"], 4, 8), _gap(4), _clip("B1", media["b"], 10, 8)])
    v2 = otio.schema.Track("V2", kind=otio.schema.TrackKind.Video)
    v2.extend([_gap(6), _clip("A2", media["a"], 30, 8)])
    timeline.tracks.extend([v1, v2])
    path = folder / "edit.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _conform(timeline: Path, out: Path, weights: Path, *flags: str) -> int:
    return main(["-q", "timeline", str(timeline), "-o", str(out), "--weights", str(weights), "--formats",
                 "prores4444", "--downsample-ratio", "0.5", "--handles", "2", *flags])  # fmt: skip


def _summary(capsys: pytest.CaptureFixture[str], timeline: Path, out: Path, weights: Path, *flags: str) -> str:
    """The line a conform prints when it is done (it must succeed)."""
    capsys.readouterr()
    assert main(["timeline", str(timeline), "-o", str(out), "--weights", str(weights), "--formats", "prores4444",
                 "--downsample-ratio", "0.5", "--handles", "2", *flags]) == 0  # fmt: skip
    return capsys.readouterr().out.splitlines()[0]


def _movies(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.glob("*_matte.mov")}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path], tfjs_weights: Path) -> Path:
    """A folder holding the edit, conformed once into ``out/`` (kept as a template: tests copy it)."""
    folder = tmp_path_factory.mktemp("first_run")
    edit = _edit(media, folder)
    assert _conform(edit, folder / "out", tfjs_weights) == 0
    assert set(_movies(folder / "out")) == FIRST_RUN_MOVIES
    return folder


@pytest.fixture
def run(first_run: Path, tmp_path: Path) -> Path:
    """A copy of the first run to change (mtimes kept, so 'not rendered again' is checkable)."""
    folder = tmp_path / "run"
    shutil.copytree(first_run, folder)
    for manifest in (folder / "out").glob("*.rvm.json"):  # the copy's manifests list the copy's mattes
        manifest.write_text(manifest.read_text().replace(str(first_run), str(folder)))
    timeline = folder / "out" / "edit.rvm.otio"
    timeline.write_text(timeline.read_text().replace(str(first_run), str(folder)))
    return folder


def _placed(item: otio.core.Item, timeline: otio.schema.Timeline) -> TR:
    return item.transformed_time_range(item.trimmed_range(), timeline.tracks)


def _assert_every_matte_on_its_source(timeline: otio.schema.Timeline, expected_mattes: set[str]) -> None:
    """Each matte clip on its source clip's record range, showing its source frames (by the matte's own numbering)."""
    mattes = [c for t in timeline.tracks if t.name.endswith(MATTE) for c in t.find_clips()]
    assert {c.name for c in mattes} == {f"{n}{MATTE}" for n in expected_mattes}
    for matte in mattes:
        meta = matte.metadata["rvm_render"]
        item: otio.core.Composable = timeline.tracks[meta["source_track_index"]]
        for index in meta["source_index"]:
            item = item[index]
        assert f"{item.name}{MATTE}" == matte.name
        assert _placed(matte, timeline) == _placed(item, timeline)
        reference = matte.media_reference
        first_shown = (seconds(matte.source_range.start_time) - seconds(reference.available_range.start_time)) * RATE
        first, last = meta["rendered_range"]
        assert Path(reference.target_url).name == f"{Path(meta['source_media']).stem}_{first:06d}-{last:06d}_matte.mov"
        assert first + first_shown == seconds(item.source_range.start_time) * RATE  # the same media frame
        assert first <= first + first_shown and first + first_shown + 7 <= last
        assert probe(reference.target_url).frames == last - first + 1


def test_run_twice_without_change_renders_nothing_and_adds_no_track(
    run: Path, tfjs_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run / "out"
    before = _movies(out)
    assert main(["timeline", str(run / "edit.otio"), "-o", str(out), "--weights", str(tfjs_weights), "--formats",
                 "prores4444", "--downsample-ratio", "0.5", "--handles", "2"]) == 0  # fmt: skip
    assert "3 of 3 media ranges matted, 3 kept from an earlier run" in capsys.readouterr().out
    assert _movies(out) == before
    timeline = otio.adapters.read_from_file(str(out / "edit.rvm.otio"))
    assert [t.name for t in timeline.tracks] == ["V1", "V2", f"V1{MATTE}", f"V2{MATTE}"]
    _assert_every_matte_on_its_source(timeline, {"A1", "B1", "A2"})


def test_its_own_rvm_otio_is_updated_not_matted(run: Path, tfjs_weights: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = run / "out"
    own = out / "edit.rvm.otio"
    assert main(["timeline", str(own), "-o", str(out), "--dry-run", "--handles", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("3 video clips to matte in 3 media ranges")
    assert "mattes of an earlier run (not matted again): 3 clips" in printed and "_matte_" not in printed
    before = _movies(out)
    assert _conform(own, out, tfjs_weights) == 0
    assert _movies(out) == before
    timeline = otio.adapters.read_from_file(str(own))
    assert [t.name for t in timeline.tracks] == ["V1", "V2", f"V1{MATTE}", f"V2{MATTE}"]
    _assert_every_matte_on_its_source(timeline, {"A1", "B1", "A2"})


def test_mattes_without_metadata_are_known_by_their_manifests(run: Path) -> None:
    """As Resolve exports a matted timeline: the matte tracks renamed, clip metadata gone."""
    timeline = otio.adapters.read_from_file(str(run / "out" / "edit.rvm.otio"))
    for number, track in enumerate(timeline.tracks, 1):
        track.name = f"Video {number}"
        for clip in track.find_clips():
            clip.metadata.clear()
    exported = run / "exported.otio"
    otio.adapters.write_to_file(timeline, str(exported))
    read, plan = plan_timeline(exported, ConformOptions(handles=2), bundle_media_dir=run / "unused")
    assert sorted(r.stem for r in plan.ranges) == ["a_000002-000013", "a_000028-000039", "b_000008-000019"]
    assert sorted(m.name for m in plan.earlier_mattes) == sorted(f"{n}{MATTE}" for n in ("A1", "B1", "A2"))
    assert [t.name for t in read.timeline.tracks] == ["Video 1", "Video 2"]


def test_trim_one_clip_and_add_one_renders_only_theirs(run: Path, media: dict[str, Path], tfjs_weights: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """On the imported .rvm.otio: A1 trimmed inside its handles, B1 lengthened past its matte, A3 added just
    before A2's matte; A2 unchanged. B1's and A2's mattes are extended: only the frames they lack are rendered."""
    out = run / "out"
    timeline = otio.adapters.read_from_file(str(out / "edit.rvm.otio"))
    v1, v2 = timeline.tracks[0], timeline.tracks[1]
    v1[0].source_range = TR(RT(5, RATE), RT(7, RATE))  # A1: 5..11, needs 3..13, inside 2..13
    v1[1].source_range = TR(duration=RT(5, RATE))
    v1[2].source_range = TR(RT(10, RATE), RT(11, RATE))  # B1: 10..20, needs 8..22: 8..19 kept, 20..22 new
    v2.append(_gap(2))
    v2.append(_clip("A3", media["a"], 20, 6))  # A3: 20..25, needs 18..27, touching 28..39: 18..27 new
    cut = run / "cut.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    before = _movies(out)
    summary = _summary(capsys, cut, out, tfjs_weights)
    assert "3 of 3 media ranges matted, 1 kept from an earlier run, 2 extended; 13 frames rendered" in summary
    after = _movies(out)
    assert after["a_000002-000013_matte.mov"] == before["a_000002-000013_matte.mov"]  # not rendered again
    assert set(after) == {"a_000002-000013_matte.mov", "b_000008-000022_matte.mov", "a_000018-000039_matte.mov"}
    assert not (out / "b_000008-000019.rvm.json").exists() and not (out / "a_000028-000039.rvm.json").exists()
    result = otio.adapters.read_from_file(str(out / "cut.rvm.otio"))
    assert [t.name for t in result.tracks] == ["V1", "V2", f"V1{MATTE}", f"V2{MATTE}"]
    _assert_every_matte_on_its_source(result, {"A1", "B1", "A2", "A3"})
    # edit.rvm.otio placed the mattes that went; conformed again, its clips are placed on the wider ones.
    assert "3 kept from an earlier run; 0 frames rendered" in _summary(capsys, run / "edit.otio", out, tfjs_weights)
    assert _movies(out) == after
    _assert_every_matte_on_its_source(otio.adapters.read_from_file(str(out / "edit.rvm.otio")), {"A1", "B1", "A2"})


def _cut(run: Path, clip: str, first: int, frames: int, name: str = "cut.otio") -> Path:
    """The first run's edit with ``clip`` showing its media's frames ``first`` .. ``first + frames - 1``."""
    timeline = otio.adapters.read_from_file(str(run / "edit.otio"))
    (item,) = (c for c in timeline.find_clips() if c.name == clip)
    item.source_range = TR(RT(first, RATE), RT(frames, RATE))
    path = run / name
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(packet) for packet in container.demux(video=0) if packet.size]


def _alpha(path: Path) -> np.ndarray:
    """Every frame's alpha of a ProRes 4444 matte, [N, H, W] in 0..1."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="yuva444p16le")[..., 3] / 65535 for f in container.decode(video=0)])


def _matte_clip(path: Path, name: str) -> otio.schema.Clip:
    timeline = otio.adapters.read_from_file(str(path))
    (matte,) = (c for t in timeline.tracks if t.name.endswith(MATTE) for c in t.find_clips() if c.name == name + MATTE)
    return matte


#: Mean |alpha difference| allowed on the new frames of a matte extended with an 8-frame pre-roll, against a
#: continuous render of the whole range. Measured here (b.mov 20..24 at 320x180, ratio 0.5; per frame 1.0e-3 to
#: 1.6e-3): 1.3e-3 mean with 8 frames of pre-roll, 2.1e-3 with 4, 3.8e-3 starting cold (no pre-roll); 12 or more
#: reach back to the matte's first frame and are exact. 2.5e-3 is about twice the measured value and fails a
#: cold start.
SEAM_MEAN_ALPHA = 2.5e-3


def test_a_clip_lengthened_past_its_matte_renders_only_the_new_frames(
    run: Path, media: dict[str, Path], tfjs_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """B1 10..17 -> 10..22 needs 8..24; its matte holds 8..19: 20..24 are rendered, after an 8-frame pre-roll
    (the default 64 would reach back to frame 8, where the matte starts, and make the seam exact)."""
    out = run / "out"
    earlier = out / "b_000008-000019_matte.mov"
    earlier_packets = _packets(earlier)
    cut = _cut(run, "B1", 10, 13)
    summary = _summary(capsys, cut, out, tfjs_weights, "--preroll", "8")
    assert "3 of 3 media ranges matted, 2 kept from an earlier run, 1 extended; 5 frames rendered" in summary
    joined = out / "b_000008-000024_matte.mov"
    assert probe(joined).frames == 17
    assert not earlier.exists() and not (out / "b_000008-000019.rvm.json").exists()
    assert _packets(joined)[:12] == earlier_packets  # the earlier frames as they were: not encoded again
    manifest = json.loads((out / "b_000008-000024.rvm.json").read_text())
    assert [(s["first_frame"], s["last_frame"]) for s in manifest["segments"]] == [(8, 19), (20, 24)]
    _assert_every_matte_on_its_source(otio.adapters.read_from_file(str(out / "cut.rvm.otio")), {"A1", "B1", "A2"})

    continuous = run / "continuous"  # the same range rendered in one go
    assert main(["-q", "matte", str(media["b"]), "-o", str(continuous), "--weights", str(tfjs_weights), "--formats",
                 "prores4444", "--downsample-ratio", "0.5", "--frames", "8-24"]) == 0  # fmt: skip
    alpha, expected = _alpha(joined), _alpha(continuous / "b_matte.mov")
    matte = _matte_clip(out / "cut.rvm.otio", "B1")
    shown = round(seconds(matte.source_range.start_time) * RATE) - 8  # B1's first frame, 10, in the matte
    assert (shown, shown + 12) == (2, 14)
    np.testing.assert_array_equal(alpha[shown], expected[shown])  # an earlier frame: a continuous render's
    assert float(np.abs(alpha[shown + 12] - expected[shown + 12]).mean()) < SEAM_MEAN_ALPHA  # a new one: close
    np.testing.assert_array_equal(alpha[:12], expected[:12])
    assert float(np.abs(alpha[12:] - expected[12:]).mean()) < SEAM_MEAN_ALPHA

    before = _movies(out)  # a third run with no change renders nothing
    summary = _summary(capsys, cut, out, tfjs_weights, "--preroll", "8")
    assert "3 of 3 media ranges matted, 3 kept from an earlier run; 0 frames rendered" in summary
    assert _movies(out) == before


def _exr_rgba(path: Path) -> np.ndarray:
    with OpenEXR.File(str(path)) as exr:
        return np.asarray(exr.channels()["RGBA"].pixels)


def test_a_clip_started_before_its_matte_links_the_matte_frames(
    run: Path, media: dict[str, Path], tfjs_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """EXR: A1 4..11 -> 1..11 needs 0..13; its matte holds 2..13: 0..1 are rendered (cold, as any render of
    them starts), 2..13 are the earlier matte's very files."""
    out = run / "exr"
    exr = ("--formats", "exr")
    _summary(capsys, run / "edit.otio", out, tfjs_weights, *exr)
    earlier = {n: (out / f"a_000002-000013_matte.{n:06d}.exr").stat().st_ino for n in range(2, 14)}
    cut = _cut(run, "A1", 1, 11)
    summary = _summary(capsys, cut, out, tfjs_weights, *exr)
    assert "1 extended; 2 frames rendered" in summary
    joined = {n: out / f"a_000000-000013_matte.{n:06d}.exr" for n in range(0, 14)}
    assert all(joined[n].stat().st_ino == inode for n, inode in earlier.items())  # linked, not copied
    assert not list(out.glob("a_000002-000013*"))
    assert sorted(p.name for p in out.glob("a_000000-000013_matte.*.exr")) == sorted(p.name for p in joined.values())
    matte = _matte_clip(out / "cut.rvm.otio", "A1")
    assert isinstance(matte.media_reference, otio.schema.ImageSequenceReference)
    assert (matte.media_reference.name_prefix, matte.media_reference.start_frame) == ("a_000000-000013_matte.", 0)
    assert list(matte.metadata["rvm_render"]["rendered_range"]) == [0, 13]
    shown = round(seconds(matte.source_range.start_time) * RATE)
    assert shown == 1  # A1's first frame, shown by the matte's frame 1

    continuous = run / "continuous"
    assert main(["-q", "matte", str(media["a"]), "-o", str(continuous), "--weights", str(tfjs_weights), "--formats",
                 "exr", "--downsample-ratio", "0.5", "--frames", "0-13"]) == 0  # fmt: skip
    for number in (0, 1):  # the new frames: a render of the range from its start
        np.testing.assert_array_equal(_exr_rgba(joined[number]), _exr_rgba(continuous / f"a_matte.{number:06d}.exr"))

    before = {path.name: path.stat().st_mtime_ns for path in out.glob("*.exr")}
    assert "0 frames rendered" in _summary(capsys, cut, out, tfjs_weights, *exr)
    assert {path.name: path.stat().st_mtime_ns for path in out.glob("*.exr")} == before


def test_a_clip_apart_from_every_matte_is_rendered_on_its_own(
    run: Path, tfjs_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """B1 10..17 -> 30..33 needs 28..35: a gap after its matte's 8..19, so no join: 28..35 alone."""
    out = run / "out"
    before = _movies(out)
    summary = _summary(capsys, _cut(run, "B1", 30, 4), out, tfjs_weights)
    assert "extended" not in summary and "8 frames rendered" in summary
    after = _movies(out)
    assert set(after) - set(before) == {"b_000028-000035_matte.mov"}
    assert {name: after[name] for name in before} == before  # the earlier matte stays: nothing holds its frames


def test_an_extension_that_fails_or_stops_leaves_the_earlier_matte_and_timeline(
    run: Path, tfjs_weights: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run / "out"
    earlier = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name.startswith("b_")}
    timeline = (out / "edit.rvm.otio").read_bytes()
    cut = _cut(run, "B1", 10, 13, name="edit.otio")  # conformed into edit.rvm.otio again
    users = out / "b_000008-000024_matte.mov"  # where the extended matte goes: the user's file
    users.write_bytes(b"the user's own file")
    assert _conform(cut, out, tfjs_weights) == 1
    assert "edit.rvm.otio was not written" in capsys.readouterr().err
    users.unlink()

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("rvm_render.jobs.assemble.commit_manifest", interrupt)  # the joined movie is in place
    assert _conform(cut, out, tfjs_weights) == 130
    for stopped in ("failed", "stopped"):
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in earlier} == earlier, stopped
        assert (out / "edit.rvm.otio").read_bytes() == timeline, stopped
    monkeypatch.undo()
    assert _conform(cut, out, tfjs_weights) == 0  # resumed: the work dir kept what the stopped run did
    assert not any((out / name).exists() for name in earlier)
    assert probe(out / "b_000008-000024_matte.mov").frames == 17
    _assert_every_matte_on_its_source(otio.adapters.read_from_file(str(out / "edit.rvm.otio")), {"A1", "B1", "A2"})


def _mean_alpha_difference(first: Path, second: Path) -> float:
    with av.open(str(first)) as one, av.open(str(second)) as two:
        pairs = zip(one.decode(video=0), two.decode(video=0), strict=True)
        return float(np.mean([np.abs(a.to_ndarray(format="gray").astype(float) - b.to_ndarray(format="gray"))
                              for a, b in pairs]))  # fmt: skip


def test_a_source_replaced_under_the_same_name_is_matted_again(
    run: Path, media: dict[str, Path], tfjs_weights: Path
) -> None:
    out = run / "replaced"  # not out/: its a_* mattes are another a.mov's, never replaced
    edit = _edit({"a": run / "a.mov", "b": media["b"]}, run)
    shutil.copy2(media["a"], run / "a.mov")
    assert _conform(edit, out, tfjs_weights) == 0  # a.mov's mattes from this copy
    old = run / "old_matte.mov"
    shutil.copy2(out / "a_000002-000013_matte.mov", old)
    shutil.copyfile(media["other"], run / "a.mov")  # same name, same length, another picture
    before = _movies(out)
    assert _conform(edit, out, tfjs_weights) == 0
    after = _movies(out)
    assert after["a_000002-000013_matte.mov"] != before["a_000002-000013_matte.mov"]
    assert after["b_000008-000019_matte.mov"] == before["b_000008-000019_matte.mov"]
    assert _mean_alpha_difference(old, out / "a_000002-000013_matte.mov") > 1
    manifest = json.loads((out / "a_000002-000013.rvm.json").read_text())
    assert manifest["input_fingerprint"]["size_bytes"] == os.path.getsize(run / "a.mov")


def test_a_truncated_matte_movie_is_rendered_again(run: Path, tfjs_weights: Path) -> None:
    out = run / "out"
    broken = out / "b_000008-000019_matte.mov"
    with broken.open("r+b") as stream:
        stream.truncate(1000)
    before = _movies(out)
    assert _conform(run / "edit.otio", out, tfjs_weights) == 0
    assert probe(broken).frames == 12
    assert {n for n, t in _movies(out).items() if t != before[n]} == {broken.name}


def test_a_matte_sequence_missing_a_frame_is_rendered_again(run: Path, tfjs_weights: Path) -> None:
    out = run / "exr"
    flags = ("--formats", "exr", "--downsample-ratio", "0.5", "--handles", "2")
    command = ["-q", "timeline", str(run / "edit.otio"), "-o", str(out), "--weights", str(tfjs_weights), *flags]
    assert main(command) == 0
    missing = out / "b_000008-000019_matte.000013.exr"
    missing.unlink()
    kept = out / "a_000002-000013_matte.000002.exr"
    kept_mtime = kept.stat().st_mtime_ns
    assert main(command) == 0
    assert missing.is_file() and kept.stat().st_mtime_ns == kept_mtime
    info = probe(out / "b_000008-000019_matte.%06d.exr")
    assert (info.first_frame_number, info.frames) == (8, 12)
    with open_reader(info, 5, 5) as reader:
        assert next(iter(reader)).rgb.shape == (180, 320, 3)


def test_a_refused_run_leaves_the_earlier_timeline_untouched(
    run: Path, tfjs_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run / "out"
    earlier = (out / "edit.rvm.otio").read_bytes()
    users = out / "a_000001-000014_matte.mov"  # where a run with 3 handles would write: the user's file
    users.write_bytes(b"the user's own file")
    assert main(["-q", "timeline", str(run / "edit.otio"), "-o", str(out), "--weights", str(tfjs_weights),
                 "--formats", "prores4444", "--downsample-ratio", "0.5", "--handles", "3"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "exists" in err and "edit.rvm.otio was not written" in err
    assert (out / "edit.rvm.otio").read_bytes() == earlier
    assert users.read_bytes() == b"the user's own file"


def test_formats_without_a_matte_say_why_and_fail(run: Path, tfjs_weights: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = run / "out"
    earlier = (out / "edit.rvm.otio").read_bytes()
    before = _movies(out)
    code = main(["timeline", str(run / "edit.otio"), "-o", str(out), "--weights", str(tfjs_weights), "--formats",
                 "comp"])  # fmt: skip
    assert code != 0
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "formats comp: a matte track needs a matte" in line and "prores4444" in line
    assert (out / "edit.rvm.otio").read_bytes() == earlier and _movies(out) == before
    assert not list(out.glob("*_comp*"))
