"""`rvm-render timeline` on a real edit built with opentimelineio over the shared clips.

The edit (tests/support/edits.py) is what an editor exports: a 23.976 timeline at 01:00:00:00 over
24 fps media with timecode 01:00:00:00, 29.97 and 30 fps media, a dissolve, a gap, two video
tracks, the same media used twice with overlapping ranges, a clip in a nested stack, a retimed and
a frozen clip, a generator, media at another machine's path, and an audio track.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import opentimelineio as otio
import pytest

from rvm_render.cli.main import main
from rvm_render.media.probe import probe
from rvm_render.media.reader import open_reader
from rvm_render.otio import ConformOptions, plan_timeline
from rvm_render.otio.requests import seconds
from support.edits import EXPECTED_RANGES, build_edit, remux_with_timecode

RATIO = "0.25"
MATTE_SUFFIX = " RVM Matte"


@pytest.fixture(scope="module")
def edit(tmp_path_factory: pytest.TempPathFactory, clips_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("edit")
    juggle = remux_with_timecode(clips_dir / "05_default_juggle.mp4", folder / "juggle_tc.mov", "01:00:00:00")
    path = folder / "edit.otio"
    otio.adapters.write_to_file(build_edit(juggle, clips_dir / "01_dog.mp4", clips_dir / "bedroom.mp4"), str(path))
    return path


@pytest.fixture(scope="module")
def conformed(tmp_path_factory: pytest.TempPathFactory, edit: Path, tfjs_weights: Path) -> tuple[Path, str]:
    """The edit conformed once (ProRes 4444 mattes), and what the command printed on stderr."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("conformed")
    command = [str(Path(sys.executable).parent / "rvm-render"), "-q", "timeline", str(edit), "-o", str(out),
               "--weights", str(tfjs_weights), "--formats", "prores4444", "--downsample-ratio", RATIO]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert result.returncode == 0, result.stderr
    return out, result.stderr


def _ranges(plan) -> dict[str, list[tuple[int, int]]]:
    found: dict[str, list[tuple[int, int]]] = {}
    for media_range in plan.ranges:
        stem = media_range.stem.rsplit("_", 1)[0]
        found.setdefault(stem, []).append((media_range.first_frame, media_range.last_frame))
    return {stem: sorted(ranges) for stem, ranges in found.items()}


def test_merged_ranges_equal_the_hand_computed_table(edit: Path, tmp_path: Path) -> None:
    _, plan = plan_timeline(edit, ConformOptions(), bundle_media_dir=tmp_path)
    assert _ranges(plan) == EXPECTED_RANGES
    assert sorted(s.name for s in plan.skipped) == ["lost", "title"] and plan.audio_clips == 1


def test_dry_run_prints_the_plan_and_renders_nothing(
    edit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["timeline", str(edit), "-o", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    for stem, ranges in EXPECTED_RANGES.items():
        for first, last in ranges:
            assert f"frames {first}-{last} " in printed and f"{stem}_{first:06d}-{last:06d}" in printed
    assert "V2[3] 'title'" in printed and "V2[4] 'lost'" in printed and "generator" in printed
    assert not out.exists() or not any(out.iterdir())


def test_skipped_clips_are_one_line_each(conformed: tuple[Path, str]) -> None:
    _, stderr = conformed
    skipped = [line for line in stderr.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 2
    assert any("V2[3] 'title'" in line and "generator" in line for line in skipped)
    assert any("V2[4] 'lost'" in line and "missing_take.mov" in line and "--relink" in line for line in skipped)


def test_original_tracks_are_unchanged_and_matte_tracks_sit_above_the_picture(
    edit: Path, conformed: tuple[Path, str]
) -> None:
    original = otio.adapters.read_from_file(str(edit))
    result = otio.adapters.read_from_file(str(conformed[0] / "edit.rvm.otio"))
    assert [t.name for t in result.tracks] == ["V1", "V2", f"V1{MATTE_SUFFIX}", f"V2{MATTE_SUFFIX}", "A1"]
    by_name = {t.name: t for t in result.tracks}
    for track in original.tracks:
        assert by_name[track.name].is_equivalent_to(track), track.name
    assert result.metadata["editor"] == original.metadata["editor"]
    assert result.global_start_time == original.global_start_time
    recorded = result.metadata["rvm_render"]
    assert sorted(s["name"] for s in recorded["skipped"]) == ["lost", "title"]
    assert len(recorded["ranges"]) == 5


def _placed(item: otio.core.Item, timeline: otio.schema.Timeline) -> otio.opentime.TimeRange:
    """Where an item plays in the timeline (through nested stacks)."""
    return item.transformed_time_range(item.trimmed_range(), timeline.tracks)


def _matte_clips(timeline: otio.schema.Timeline) -> list[otio.schema.Clip]:
    return [c for t in timeline.tracks if t.name.endswith(MATTE_SUFFIX) for c in t.find_clips()]


def _source_clip(timeline: otio.schema.Timeline, matte: otio.schema.Clip) -> otio.schema.Clip:
    meta = matte.metadata["rvm_render"]
    item: otio.core.Composable = timeline.tracks[meta["source_track_index"]]
    for index in meta["source_index"]:
        item = item[index]
    assert isinstance(item, otio.schema.Clip)
    return item


def test_every_matte_clip_sits_exactly_on_its_source_clip(conformed: tuple[Path, str]) -> None:
    timeline = otio.adapters.read_from_file(str(conformed[0] / "edit.rvm.otio"))
    mattes = _matte_clips(timeline)
    assert sorted(c.name for c in mattes) == sorted(f"{n}{MATTE_SUFFIX}" for n in ("J1", "D1", "J2", "B1", "J3", "D2"))
    for matte in mattes:
        source = _source_clip(timeline, matte)
        assert _placed(matte, timeline) == _placed(source, timeline), matte.name
        assert matte.source_range == source.source_range
        target = matte.media_reference.target_url  # the input's form: a bare absolute path, as Resolve wants
        assert os.path.isabs(target) and not target.startswith("file:") and Path(target).is_file()
        assert [type(e).__name__ for e in matte.effects] == [type(e).__name__ for e in source.effects]
        assert [getattr(e, "time_scalar", None) for e in matte.effects] == [
            getattr(e, "time_scalar", None) for e in source.effects
        ]
    v1_matte = next(t for t in timeline.tracks if t.name == f"V1{MATTE_SUFFIX}")
    (dissolve,) = [i for i in v1_matte if isinstance(i, otio.schema.Transition)]
    (original,) = [i for i in timeline.tracks[0] if isinstance(i, otio.schema.Transition)]
    assert (dissolve.transition_type, dissolve.in_offset, dissolve.out_offset) == (
        original.transition_type, original.in_offset, original.out_offset,
    )  # fmt: skip
    v2_matte = next(t for t in timeline.tracks if t.name == f"V2{MATTE_SUFFIX}")
    assert isinstance(v2_matte[2], otio.schema.Stack) and v2_matte.duration() == timeline.tracks[1].duration()


def _rgba(path: str, index: int) -> np.ndarray:
    with av.open(path) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number == index:
                return frame.to_ndarray(format="rgba64le").astype(np.float32) / 65535
    raise AssertionError(f"{path} has no frame {index}")


def test_the_matte_at_a_clips_first_frame_is_made_from_that_frame(conformed: tuple[Path, str]) -> None:
    """Decode the matte where the clip starts: its foreground matches that source frame, not a neighbour."""
    timeline = otio.adapters.read_from_file(str(conformed[0] / "edit.rvm.otio"))
    for matte in _matte_clips(timeline):
        reference = matte.media_reference
        rate = Fraction(reference.available_range.start_time.rate).limit_denominator(1001)
        offset = (seconds(matte.source_range.start_time) - seconds(reference.available_range.start_time)) * rate
        index = int(offset + Fraction(1, 2))
        rgba = _rgba(reference.target_url, index)
        meta = matte.metadata["rvm_render"]
        info = probe(meta["source_media"])
        frame = meta["rendered_range"][0] + index - info.first_frame_number
        opaque = rgba[..., 3] > 0.99
        errors = []
        for candidate in (frame - 1, frame, frame + 1):
            with open_reader(info, candidate, candidate) as reader:
                rgb = next(iter(reader)).rgb.astype(np.float32) / 255
            errors.append(float(np.abs(rgba[..., :3][opaque] - rgb[opaque]).mean()))
        assert errors[1] < min(errors[0], errors[2]) / 3, (matte.name, errors)


def test_matte_timecode_is_the_source_frames(conformed: tuple[Path, str]) -> None:
    def timecode(path: Path) -> str:
        with av.open(str(path)) as container:
            return container.streams.video[0].metadata["timecode"]

    out = conformed[0]
    assert timecode(out / "juggle_tc_000000-000109_matte.mov") == "01:00:00:00"
    assert timecode(out / "juggle_tc_000138-000185_matte.mov") == "01:00:05:18"  # 138 frames at 24 fps
    assert timecode(out / "01_dog_000188-000212_matte.mov") == "00:00:06:08"  # 188 frames, 30 a second


def test_each_range_has_its_manifest(conformed: tuple[Path, str]) -> None:
    out = conformed[0]
    for stem, ranges in EXPECTED_RANGES.items():
        for first, last in ranges:
            manifest = json.loads((out / f"{stem}_{first:06d}-{last:06d}.rvm.json").read_text())
            assert (manifest["first_frame"], manifest["last_frame"]) == (first, last)


def test_a_second_run_keeps_what_the_first_matted(
    conformed: tuple[Path, str], edit: Path, tfjs_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = conformed[0]
    movies = {p: p.stat().st_mtime_ns for p in out.glob("*_matte.mov")}
    code = main(["timeline", str(edit), "-o", str(out), "--weights", str(tfjs_weights), "--formats", "prores4444",
                 "--downsample-ratio", RATIO])  # fmt: skip
    assert code == 0
    assert "5 of 5 media ranges matted, 5 kept from an earlier run" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.glob("*_matte.mov")} == movies


def test_strict_refuses_before_rendering(edit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["timeline", str(edit), "-o", str(out), "--strict"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "\n" not in error and "2 video clips" in error and "--strict" in error
    assert not out.exists() or not any(p for p in out.iterdir() if p.name != ".rvm-work")


def test_relink_finds_media_from_another_machine(
    edit: Path, tmp_path: Path, clips_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    os.symlink(clips_dir / "bedroom.mp4", media / "missing_take.mov")
    assert main(["timeline", str(edit), "-o", str(tmp_path / "out"), "--relink", str(media), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    # 12 timeline frames at 23.976 are 15.015 frames of the 30 fps file found there: 0..14, with handles 0..26.
    assert "missing_take_000000-000026  [V2[4] 'lost']" in printed and "'lost'" not in printed.split("skipped:")[-1]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"OTIO_SCHEMA": "Timeline.99", "name": "x", "tracks": null}', "schema version"),
        ('{"OTIO_SCHEMA": "Timel', "re-export"),
        (None, "not a Timeline"),
    ],
)
def test_unreadable_timelines_are_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, reason: str
) -> None:
    path = tmp_path / "bad.otio"
    if content is None:
        otio.adapters.write_to_file(otio.schema.Clip("lonely"), str(path))
    else:
        path.write_text(content)
    out = tmp_path / "out"
    assert main(["timeline", str(path), "-o", str(out)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "\n" not in error and reason in error and str(path) in error
    assert not out.exists() or not list(out.glob("*.otio"))


def test_premiere_xml_from_another_machine_round_trips(
    edit: Path, tmp_path: Path, clips_dir: Path, tfjs_weights: Path
) -> None:
    """FCP7/Premiere XML (otio-fcp-adapter) with Windows file URLs: relinked, matted, written back as XML too."""
    timeline = otio.adapters.read_from_file(str(edit))
    timeline.tracks.remove(timeline.tracks[1])  # the XML adapter writes no generators or nested stacks
    for clip in timeline.find_clips():
        reference = clip.media_reference
        reference.target_url = "file://localhost/D%3a/media/" + Path(reference.target_url).name
    xml = tmp_path / "cut.xml"
    otio.adapters.write_to_file(timeline, str(xml), adapter_name="fcp_xml")
    out = tmp_path / "out"
    code = main(["-q", "timeline", str(xml), "-o", str(out), "--relink", str(edit.parent), "--relink", str(clips_dir),
                 "--weights", str(tfjs_weights), "--formats", "prores4444", "--downsample-ratio", RATIO,
                 "--handles", "0"])  # fmt: skip
    assert code == 0
    back = otio.adapters.read_from_file(str(out / "cut.rvm.xml"))
    mattes = [c for c in back.find_clips() if c.name.endswith(MATTE_SUFFIX)]
    assert len(mattes) == 3 and all(Path(_local(c)).is_file() for c in mattes)
    rvm = otio.adapters.read_from_file(str(out / "cut.rvm.otio"))
    assert len(_matte_clips(rvm)) == 3
    assert all(c.media_reference.target_url.startswith("file://") for c in _matte_clips(rvm)), "URLs, as the input"


def _local(clip: otio.schema.Clip) -> Path:
    from rvm_render.otio.media_paths import local_path

    return local_path(clip.media_reference.target_url, Path("/"))


def _v1_only(edit: Path) -> otio.schema.Timeline:
    timeline = otio.adapters.read_from_file(str(edit))
    timeline.tracks.remove(timeline.tracks[1])
    return timeline


def test_otiod_bundle_reads_media_inside_it(edit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "cut.otiod"
    otio.adapters.write_to_file(_v1_only(edit), str(bundle))  # copies the media into cut.otiod/media/
    assert main(["timeline", str(bundle), "-o", str(tmp_path / "out"), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"{bundle}/media/juggle_tc.mov  frames 0-109 " in printed and "0 video clips skipped" in printed


def test_otioz_bundle_conforms_with_relative_paths(edit: Path, tmp_path: Path, tfjs_weights: Path) -> None:
    bundle = tmp_path / "cut.otioz"
    otio.adapters.write_to_file(_v1_only(edit), str(bundle))
    out = tmp_path / "out"
    argv = ["-q", "timeline", str(bundle), "-o", str(out), "--relative-paths", "--handles", "0",
            "--weights", str(tfjs_weights), "--formats", "prores4444", "--downsample-ratio", RATIO]  # fmt: skip
    assert main(argv) == 0
    movies = {p: p.stat().st_mtime_ns for p in out.glob("*_matte.mov")}
    assert main(argv) == 0, "run twice: the kept media is the bundle's, so every range is kept"
    assert {p: p.stat().st_mtime_ns for p in out.glob("*_matte.mov")} == movies
    timeline = otio.adapters.read_from_file(str(out / "cut.rvm.otio"))
    mattes = _matte_clips(timeline)
    assert len(mattes) == 3
    for matte in mattes:
        target = matte.media_reference.target_url
        assert not os.path.isabs(target) and (out / target).is_file(), target
        source = _source_clip(timeline, matte).media_reference.target_url  # 'media/...' in the bundle
        assert not os.path.isabs(source) and (out / source).is_file(), source
        manifest = json.loads((out / matte.metadata["rvm_render"]["manifest"]).read_text())
        assert Path(manifest["input"]).is_file(), "the bundle's media, kept beside the .rvm.otio"
    assert '"Clip.2"' in (out / "cut.rvm.otio").read_text() and not (out / ".rvm-work").exists()
