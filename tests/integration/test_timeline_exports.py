"""`rvm-render timeline` on an edit in the shapes real Resolve and Hiero exports take (tests/support/edits.py).

Tiny real media (320x180, 30-40 frames): PNG sequences at Resolve's 23.976 (numbered from 1001, the
available range from 0) and also used at 25 fps, a Hiero plate at 23.976024627685547 placed at
10:00:00:00, single-file stills numbered like a sequence with a gap, and an untagged 30 fps take at
01:00:00:00 referenced by a relative path, reversed, warped by Hiero's TimeWarp and run past its end,
on unnamed tracks. Every matte clip is checked by decoding its matte at the clip's first and last frame.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
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
from rvm_render.otio import ConformOptions, plan_timeline
from rvm_render.otio.requests import exact_rate, nearest_frame, seconds
from support.edits import build_export_edit

RATIO = "0.25"
MATTE_SUFFIX = " RVM Matte"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory, clips_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("export")
    clips = [clips_dir / name for name in ("05_default_juggle.mp4", "01_dog.mp4", "bedroom.mp4")]
    timeline = build_export_edit(folder / "edit", *clips)
    path = folder / "edit" / "export.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _conform(export: Path, out: Path, weights: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "rvm-render"), "timeline", str(export), "-o", str(out),
               "--weights", str(weights), "--formats", "prores4444", "--downsample-ratio", RATIO, "--handles", "2",
               *extra]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=600)


@pytest.fixture(scope="module")
def conformed(tmp_path_factory: pytest.TempPathFactory, export: Path, tfjs_weights: Path) -> tuple[Path, str]:
    """The export conformed once into a folder elsewhere, and what the command printed on stderr."""
    out = tmp_path_factory.mktemp("conformed") / "mattes"
    result = _conform(export, out, tfjs_weights)
    assert result.returncode == 0, result.stderr
    return out, result.stderr


def _timeline(conformed: tuple[Path, str]) -> otio.schema.Timeline:
    return otio.adapters.read_from_file(str(conformed[0] / "export.rvm.otio"))


def _mattes(timeline: otio.schema.Timeline) -> dict[str, otio.schema.Clip]:
    return {c.name.removesuffix(MATTE_SUFFIX): c for t in timeline.tracks if t.name.endswith(MATTE_SUFFIX)
            for c in t.find_clips()}  # fmt: skip


def _sources(timeline: otio.schema.Timeline) -> dict[str, otio.schema.Clip]:
    return {c.name: c for t in timeline.tracks if not t.name.endswith(MATTE_SUFFIX) for c in t.find_clips()}


# --- decoding: what a clip shows at a time, in its source and in its matte ----------------------------


def _frame_at(reference: otio.core.MediaReference, time: RT, root: Path) -> tuple[Path, int]:
    """(file, frame index in it) that ``reference`` shows at ``time`` (OpenTimelineIO's mapping)."""
    if isinstance(reference, otio.schema.ImageSequenceReference):
        number = reference.frame_for_time(time)
        return root / reference.target_url_for_image_number(number - reference.start_frame), 0
    path = root / reference.target_url
    if path.suffix == ".png":  # a still: its one image, whatever the time
        return path, 0
    offset = seconds(time) - seconds(reference.available_range.start_time)
    return path, nearest_frame(offset * probe(path).rate)


def _rgba(path: Path, index: int) -> np.ndarray:
    with av.open(str(path)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number == index:
                return frame.to_ndarray(format="rgba64le").astype(np.float64) / 65535
    raise AssertionError(f"{path} has no frame {index}")


def _neighbour(path: Path, index: int, step: int) -> tuple[Path, int] | None:
    """The frame ``step`` away in the same media (None past its ends)."""
    if path.suffix == ".png":  # a frame of a sequence, or a still numbered like one (its siblings are other frames)
        match = re.match(r"^(.*?)(\d+)$", path.stem)
        assert match is not None, path
        prefix, number = match.groups()
        other = path.with_name(f"{prefix}{int(number) + step:0{len(number)}d}.png")
        return (other, 0) if other.exists() else None
    frames = probe(path).frames
    return (path, index + step) if 0 <= index + step < frames else None


def _assert_matte_made_from(matte: tuple[Path, int], source: tuple[Path, int], label: str) -> None:
    """The matte's straight foreground matches the source frame (alpha-weighted) better than its neighbours."""
    rgba = _rgba(*matte)
    alpha = rgba[..., 3:]
    assert alpha.sum() > 0, f"{label}: an empty matte"

    def error(frame: tuple[Path, int]) -> float:
        rgb = _rgba(*frame)[..., :3]
        return float((alpha * np.abs(rgba[..., :3] - rgb)).sum() / (alpha.sum() * 3))

    own = error(source)
    others = [error(n) for n in (_neighbour(*source, -1), _neighbour(*source, 1)) if n is not None]
    assert others and all(own < other for other in others), (label, own, others)


def _check_at(source: otio.schema.Clip, matte: otio.schema.Clip, time: RT, root: Path, out: Path, label: str) -> None:
    shown = _frame_at(source.media_reference, time, root)
    matte_frame = _frame_at(matte.media_reference, time, out)
    assert shown[0].exists() and matte_frame[0].exists(), (label, shown, matte_frame)
    _assert_matte_made_from(matte_frame, shown, label)


def _first_and_last(clip: otio.schema.Clip) -> list[RT]:
    """The clip's first and last frame; for a clip past its media's end, the media's last frame (P)."""
    source = clip.source_range
    one = RT(1, source.start_time.rate)
    available = clip.media_reference.available_range
    last = min(source.end_time_exclusive(), available.end_time_exclusive()) - one
    return [source.start_time, last]


# --- the conform ------------------------------------------------------------------------------


def test_every_clip_s_matte_is_made_from_the_frames_it_shows(conformed: tuple[Path, str]) -> None:
    """NTSC-rate sequences (Resolve 23.976, Hiero's float), a 10:00:00:00 plate (B, B2), a sequence at two rates,
    a relative-path take, a still held for 48 frames: the matte at each clip's first and last frame."""
    out = conformed[0]
    timeline = _timeline(conformed)
    sources, mattes = _sources(timeline), _mattes(timeline)
    assert set(mattes) == {"S1", "S1 at 25", "T", "Name_V7_310821_0003.png", "R", "B", "B2", "W", "P"}
    for name in ("S1", "S1 at 25", "T", "Name_V7_310821_0003.png", "B", "B2", "P"):
        source, matte = sources[name], mattes[name]
        assert matte.source_range == source.source_range
        for time in _first_and_last(source):
            _check_at(source, matte, time, Path("/"), out, f"{name} at {time}")


def test_a_reversed_clip_has_mattes_for_both_readings_of_its_range(conformed: tuple[Path, str]) -> None:
    """R: take 15-26 reversed. OpenTimelineIO's transform shows 15, 14 ... 4; Premiere/FCP XML (and Resolve)
    play the range's frames from the last, 26 ... 15. The matte clip carries the same range and reverse, and
    under either reading its frame is the matte of the frame the picture shows, first and last."""
    out = conformed[0]
    timeline = _timeline(conformed)
    source, matte = _sources(timeline)["R"], _mattes(timeline)["R"]
    assert [e.time_scalar for e in matte.effects] == [-1]
    start, duration = source.source_range.start_time, source.source_range.duration
    one = RT(1, start.rate)
    otio_reading = [start, start - duration + one]
    editors_reading = [start + duration - one, start]
    for time in (*otio_reading, *editors_reading):
        _check_at(source, matte, time, Path("/"), out, f"R at {time}")


def test_a_still_is_not_a_sequence_and_its_matte_covers_the_clip(conformed: tuple[Path, str]) -> None:
    out = conformed[0]
    timeline = _timeline(conformed)
    source, matte = _sources(timeline)["Name_V7_310821_0003.png"], _mattes(timeline)["Name_V7_310821_0003.png"]
    reference = matte.media_reference
    assert isinstance(reference, otio.schema.ExternalReference) and (out / reference.target_url).is_file()
    covered, shown = reference.available_range, source.trimmed_range()
    assert covered.start_time <= shown.start_time and covered.end_time_exclusive() >= shown.end_time_exclusive()
    manifest = json.loads((out / "Name_V7_310821_0003_000000-000000.rvm.json").read_text())
    assert (manifest["first_frame"], manifest["last_frame"]) == (0, 0) and "%" not in manifest["input"]


def test_matte_movie_timecode_is_its_available_range(conformed: tuple[Path, str]) -> None:
    """The README's promise: the matte file's timecode and its available_range in the .rvm.otio agree
    (a 1001-numbered sequence available from 0; an untagged take the edit places at 01:00:00:00)."""
    out = conformed[0]
    checked = 0
    timeline = _timeline(conformed)
    for matte in _mattes(timeline).values():
        reference = matte.media_reference
        if not reference.target_url.endswith(".mov"):
            continue
        with av.open(str(out / reference.target_url)) as container:
            timecode = container.streams.video[0].metadata["timecode"]
        start = reference.available_range.start_time
        assert timecode == otio.opentime.to_timecode(start, start.rate), (matte.name, timecode, start)
        checked += 1
    assert checked == 8


def test_an_image_sequence_at_two_rates_is_two_ranges(conformed: tuple[Path, str]) -> None:
    timeline = _timeline(conformed)
    by_name = _mattes(timeline)
    rates = {name: exact_rate(by_name[name].media_reference.available_range.start_time.rate)
             for name in ("S1", "S1 at 25")}  # fmt: skip
    assert rates == {"S1": Fraction(24000, 1001), "S1 at 25": Fraction(25)}
    assert by_name["S1"].media_reference.target_url != by_name["S1 at 25"].media_reference.target_url


def test_other_time_effects_are_warned_and_mirrored(conformed: tuple[Path, str]) -> None:
    out, stderr = conformed
    assert any("'W'" in line and "TimeWarp" in line and "whole source range" in line for line in stderr.splitlines())
    timeline = _timeline(conformed)
    matte = _mattes(timeline)["W"]
    assert [e.effect_name for e in matte.effects] == ["TimeWarp"]
    first, last = matte.metadata["rvm_render"]["rendered_range"]
    assert first <= 2 and last >= 7  # take frames 2-7, the clip's source range


def test_unnamed_tracks_get_their_position_as_editors_show_it(conformed: tuple[Path, str]) -> None:
    timeline = _timeline(conformed)
    names = [t.name for t in timeline.tracks]
    assert names == ["", "", "Hiero V1", "Video 1 RVM Matte", "Video 2 RVM Matte", "Hiero V1 RVM Matte"]


def test_relative_media_paths_are_rebased_and_metadata_paths_resolve(
    conformed: tuple[Path, str], export: Path
) -> None:
    timeline = _timeline(conformed)
    take = _sources(timeline)["T"].media_reference.target_url
    assert take == str(export.parent / "clips" / "take.mov")  # not 'clips/take.mov', offline from OUTDIR
    for matte in _mattes(timeline).values():
        meta = matte.metadata["rvm_render"]
        assert all(os.path.isabs(meta[key]) for key in ("source_media", "manifest")), meta
        assert Path(meta["manifest"]).is_file()
    assert all(os.path.isabs(r["media"]) for r in timeline.metadata["rvm_render"]["ranges"])


def test_relative_paths_flag_makes_every_path_relative_to_the_written_timeline(
    export: Path, tmp_path: Path, tfjs_weights: Path
) -> None:
    edit = otio.adapters.read_from_file(str(export))
    edit.tracks[:] = [edit.tracks[0]]  # V1: the sequences and the relative take
    small = export.parent / "v1.otio"
    otio.adapters.write_to_file(edit, str(small))
    out = tmp_path / "mattes"
    result = _conform(small, out, tfjs_weights, "--relative-paths")
    assert result.returncode == 0, result.stderr
    timeline = otio.adapters.read_from_file(str(out / "v1.rvm.otio"))
    take = _sources(timeline)["T"].media_reference.target_url
    assert not os.path.isabs(take) and (out / take).resolve() == (export.parent / "clips" / "take.mov").resolve()
    for matte in _mattes(timeline).values():
        meta = matte.metadata["rvm_render"]
        assert not os.path.isabs(meta["source_media"]) and (out / meta["source_media"]).parent.is_dir(), meta
        assert not os.path.isabs(meta["manifest"]) and (out / meta["manifest"]).is_file(), meta


def test_progress_names_each_range(conformed: tuple[Path, str]) -> None:
    _, stderr = conformed
    for label in ("shot-23.976fps_001004-001019", "shot-25fps_001013-001026", "take_000000-000028"):
        assert any(line.startswith(f"{label} [") for line in stderr.splitlines()), label


# --- planning: no render ----------------------------------------------------------------------


def test_zero_duration_clips_are_skipped_and_clamping_is_warned(
    export: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="rvm_render.otio.requests"):
        _, plan = plan_timeline(export, ConformOptions(handles=2), bundle_media_dir=tmp_path)
    assert [(s.name, "zero duration" in s.reason) for s in plan.skipped] == [("Z", True)]
    assert "Z" not in {use.name for use in plan.uses}
    (past_end,) = [r.message for r in caplog.records if "'P'" in r.message]
    assert "35-46" in past_end and "0-39" in past_end and "35-39" in past_end


def test_dry_run_strict_fails_as_the_real_run_does(export: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "out"
    assert main(["timeline", str(export), "-o", str(out), "--dry-run", "--strict"]) == 1
    captured = capsys.readouterr()
    assert "'Z'" in captured.out and "--strict" in captured.err and not out.exists()
    assert main(["timeline", str(export), "-o", str(out), "--dry-run"]) == 0


def test_dry_run_summarises_a_media_used_many_times(export: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    edit = otio.schema.Timeline("many")
    track = otio.schema.Track("V1")
    take = export.parent / "clips" / "take.mov"
    for index in range(2000):
        reference = otio.schema.ExternalReference(target_url=str(take), available_range=TR(RT(0, 30), RT(40, 30)))
        track.append(otio.schema.Clip(f"shot {index}", reference, TR(RT(index % 30, 30), RT(4, 30))))
    edit.tracks.append(track)
    path = tmp_path / "many.otio"
    otio.adapters.write_to_file(edit, str(path))
    assert main(["timeline", str(path), "-o", str(tmp_path / "out"), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    (line,) = [line for line in printed.splitlines() if "take_000000-000039" in line]
    assert len(line) < 400 and "'shot 0'" in line and "1995 more clips" in line


def test_an_unwritable_output_folder_is_one_error_before_the_model_loads(
    export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    code = main(["timeline", str(export), "-o", str(blocker / "mattes"), "--weights", str(tmp_path / "no weights")])
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "\n" not in error and "a file" in error and "-o" in error


def test_a_segmented_range_keeps_the_edit_s_rate_and_timecode(export: Path, tmp_path: Path, tfjs_weights: Path) -> None:
    """Segment tasks and the assembly probe the input again: an NTSC sequence stays 24000/1001, and the matte's
    timecode is still where its available_range puts it."""
    edit = otio.adapters.read_from_file(str(export))
    (clip,) = [c for c in edit.find_clips() if c.name == "S1"]
    track = otio.schema.Track("V1")
    track.append(clip.deepcopy())
    edit.tracks[:] = [track]
    path = export.parent / "s1.otio"
    otio.adapters.write_to_file(edit, str(path))
    out = tmp_path / "mattes"
    result = _conform(path, out, tfjs_weights, "--segment-frames", "8")
    assert result.returncode == 0, result.stderr
    timeline = otio.adapters.read_from_file(str(out / "s1.rvm.otio"))
    matte = _mattes(timeline)["S1"]
    movie = out / matte.media_reference.target_url
    manifest = json.loads(Path(matte.metadata["rvm_render"]["manifest"]).read_text())
    assert len(manifest["segments"]) == 2
    with av.open(str(movie)) as container:
        stream = container.streams.video[0]
        assert (stream.average_rate, stream.metadata["timecode"]) == (Fraction(24000, 1001), "00:00:00:03")
    start = matte.media_reference.available_range.start_time
    assert otio.opentime.to_timecode(start, start.rate) == "00:00:00:03"
    _check_at(_sources(timeline)["S1"], matte, _first_and_last(clip)[1], Path("/"), out, "S1 segmented")
