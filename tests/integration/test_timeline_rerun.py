"""`rvm-render timeline` run again: on the same edit, on its own `.rvm.otio` cut further, after the
source or the mattes changed on disk.

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


def test_trim_one_clip_and_add_one_renders_only_theirs(run: Path, media: dict[str, Path], tfjs_weights: Path) -> None:
    """On the imported .rvm.otio: A1 trimmed inside its handles, B1 lengthened, A3 added; A2 unchanged."""
    out = run / "out"
    timeline = otio.adapters.read_from_file(str(out / "edit.rvm.otio"))
    v1, v2 = timeline.tracks[0], timeline.tracks[1]
    v1[0].source_range = TR(RT(5, RATE), RT(7, RATE))  # A1: 5..11, needs 3..13, inside 2..13
    v1[1].source_range = TR(duration=RT(5, RATE))
    v1[2].source_range = TR(RT(10, RATE), RT(11, RATE))  # B1: 10..20, needs 8..22
    v2.append(_gap(2))
    v2.append(_clip("A3", media["a"], 20, 6))  # A3: 20..25, needs 18..27
    cut = run / "cut.otio"
    otio.adapters.write_to_file(timeline, str(cut))
    before = _movies(out)
    assert _conform(cut, out, tfjs_weights) == 0
    after = _movies(out)
    assert {name: after[name] for name in before} == before  # nothing rendered again
    assert set(after) - set(before) == {"b_000008-000022_matte.mov", "a_000018-000027_matte.mov"}
    result = otio.adapters.read_from_file(str(out / "cut.rvm.otio"))
    assert [t.name for t in result.tracks] == ["V1", "V2", f"V1{MATTE}", f"V2{MATTE}"]
    _assert_every_matte_on_its_source(result, {"A1", "B1", "A2", "A3"})


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
