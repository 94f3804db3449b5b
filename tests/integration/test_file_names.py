"""What outputs are called: odd file names, image-sequence frame numbers, and inputs that would collide."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import av
import pytest

from rvm_render.media.probe import probe
from rvm_render.media.reader import open_reader
from support.cli import matte

RATIO = "0.25"
PLATE_FIRST = 1001
PLATE_FRAMES = 12


def _manifest(out: Path, stem: str) -> dict:
    return json.loads((out / f"{stem}.rvm.json").read_text())


def _frames_in(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _assert_manifest_names_real_files(manifest: dict) -> None:
    """Every output path exists; a sequence pattern formats, for each listed frame number, to a file."""
    for output in manifest["outputs"]:
        path = Path(output["path"])
        if output["format"] in ("exr", "png"):
            numbers = range(output["first_frame"], output["last_frame"] + 1)
            missing = [n for n in numbers if not (path.parent / (path.name % n)).is_file()]
            assert missing == [], (output, missing)
        else:
            assert path.is_file(), output


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory, clips_dir: Path) -> Path:
    """Frames of a real clip as a PNG plate numbered 1001-1012, VFX style (``plate/shot.1001.png``)."""
    folder = tmp_path_factory.mktemp("plate")
    info = probe(clips_dir / "bedroom.mp4")
    with open_reader(info, 0, PLATE_FRAMES - 1) as reader:
        for frame in reader:
            image = av.VideoFrame.from_ndarray(frame.rgb, format="rgb24").reformat(width=480, height=270)
            image.to_image().save(folder / f"shot.{PLATE_FIRST + frame.index:04d}.png")
    return folder


@pytest.mark.parametrize("given_as", ["shot.####.png", "shot.%04d.png", "shot.1005.png"])
def test_sequence_keeps_its_frame_numbers(plate: Path, tmp_path: Path, tfjs_weights: Path, given_as: str) -> None:
    code = matte([plate / given_as], tmp_path, tfjs_weights, "--formats", "exr,png,prores4444",
                 "--downsample-ratio", RATIO)  # fmt: skip
    assert code == 0
    manifest = _manifest(tmp_path, "shot")
    last = PLATE_FIRST + PLATE_FRAMES - 1
    assert (manifest["first_frame"], manifest["last_frame"], manifest["frames"]) == (PLATE_FIRST, last, PLATE_FRAMES)
    assert {(o["first_frame"], o["last_frame"]) for o in manifest["outputs"]} == {(PLATE_FIRST, last)}
    _assert_manifest_names_real_files(manifest)
    assert sorted(p.name for p in tmp_path.glob("shot_matte.*.exr"))[0] == f"shot_matte.{PLATE_FIRST:06d}.exr"


def test_frames_takes_the_sequence_numbers(plate: Path, tmp_path: Path, tfjs_weights: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    pattern = plate / "shot.####.png"
    assert matte([pattern], tmp_path, tfjs_weights, "--formats", "exr,alpha", "--frames", "2-4") == 1
    error = capsys.readouterr().err.strip().splitlines()[0]
    assert error.startswith("error:") and f"frames {PLATE_FIRST}-{PLATE_FIRST + PLATE_FRAMES - 1}" in error

    assert matte([pattern], tmp_path, tfjs_weights, "--formats", "exr,alpha", "--frames", "1003-1005",
                 "--downsample-ratio", RATIO) == 0  # fmt: skip
    manifest = _manifest(tmp_path, "shot")
    assert (manifest["first_frame"], manifest["last_frame"], manifest["frames"]) == (1003, 1005, 3)
    assert sorted(p.name for p in tmp_path.glob("shot_matte.*.exr")) == [
        f"shot_matte.{n:06d}.exr" for n in (1003, 1004, 1005)
    ]
    assert _frames_in(tmp_path / "shot_alpha.mov") == 3
    _assert_manifest_names_real_files(manifest)


def test_segmented_sequence_numbers_its_segments(plate: Path, tmp_path: Path, tfjs_weights: Path) -> None:
    code = matte([plate / "shot.####.png"], tmp_path, tfjs_weights, "--formats", "exr", "--segment-frames", "4",
                 "--frames", "1002-1009", "--downsample-ratio", RATIO)  # fmt: skip
    assert code == 0
    manifest = _manifest(tmp_path, "shot")
    assert [(s["first_frame"], s["last_frame"]) for s in manifest["segments"]] == [(1002, 1005), (1006, 1009)]
    assert (manifest["first_frame"], manifest["last_frame"]) == (1002, 1009)
    _assert_manifest_names_real_files(manifest)
    assert not (tmp_path / ".rvm-work").exists(), "the emptied .rvm-work folder is removed too"


@pytest.mark.parametrize("name", ["take 100%.mp4", "shot#1.mp4", "50%d off.mp4"])
@pytest.mark.parametrize("segment_frames", ["0", "2"])
def test_odd_file_names_render_and_name_their_outputs(
    tmp_path: Path, clips_dir: Path, tfjs_weights: Path, name: str, segment_frames: str
) -> None:
    clip = tmp_path / name
    shutil.copy(clips_dir / "bedroom.mp4", clip)
    out = tmp_path / "out"
    code = matte([clip], out, tfjs_weights, "--formats", "exr,png,prores4444", "--frames", "0-3",
                 "--segment-frames", segment_frames, "--downsample-ratio", RATIO)  # fmt: skip
    assert code == 0
    stem = clip.stem
    manifest = _manifest(out, stem)
    assert manifest["input"] == str(clip)
    _assert_manifest_names_real_files(manifest)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{stem}.rvm.json", f"{stem}_matte.mov"]
        + [f"{stem}_matte.{n:06d}.{ext}" for n in range(4) for ext in ("exr", "png")]
    )


def test_sequence_with_a_percent_sign_in_its_name(plate: Path, tmp_path: Path, tfjs_weights: Path) -> None:
    odd = tmp_path / "odd plate"
    odd.mkdir()
    for number in range(PLATE_FIRST, PLATE_FIRST + 3):
        shutil.copy(plate / f"shot.{number:04d}.png", odd / f"take 100%.{number:04d}.png")
    out = tmp_path / "out"
    assert matte([odd / "take 100%.####.png"], out, tfjs_weights, "--formats", "exr", "--downsample-ratio", RATIO) == 0
    manifest = _manifest(out, "take 100%")
    assert manifest["input"] == str(odd / "take 100%%.%04d.png")
    assert Path(manifest["input"]).name % PLATE_FIRST == f"take 100%.{PLATE_FIRST:04d}.png"
    _assert_manifest_names_real_files(manifest)


def test_inputs_with_the_same_name_are_refused_before_rendering(
    tmp_path: Path, clips_dir: Path, tfjs_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "a" / "same.mp4", tmp_path / "b" / "same.mov"
    for path in (first, second):
        path.parent.mkdir()
        shutil.copy(clips_dir / "bedroom.mp4", path)
    out = tmp_path / "out"
    assert matte([first], out, tfjs_weights, "--formats", "exr", "--frames", "0-1", "--downsample-ratio", RATIO) == 0
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}

    for flags in ((), ("--overwrite",)):
        code = matte([first, second], out, tfjs_weights, "--formats", "exr", "--frames", "0-1", *flags)
        assert code == 2
        error = capsys.readouterr().err.strip()
        assert "\n" not in error and str(first) in error and str(second) in error and "-o" in error
        assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before, "nothing written or replaced"


def test_a_later_run_with_another_input_of_the_same_name_is_refused_naming_it(
    tmp_path: Path, clips_dir: Path, tfjs_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "day1" / "take.mp4", tmp_path / "day2" / "take.mp4"
    for path, clip in ((first, "bedroom.mp4"), (second, "01_dog.mp4")):
        path.parent.mkdir()
        shutil.copy(clips_dir / clip, path)
    out, flags = tmp_path / "out", ("--formats", "exr", "--frames", "0-1", "--downsample-ratio", RATIO)
    assert matte([first], out, tfjs_weights, *flags) == 0
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert matte([second], out, tfjs_weights, *flags) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and f"another input, '{first}'" in error and "--overwrite" in error, error
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_overwrite_replaces_a_deliverable_whole(
    tmp_path: Path, clips_dir: Path, tfjs_weights: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clip = clips_dir / "bedroom.mp4"
    flags = ("--downsample-ratio", RATIO, "--segment-frames", "0")
    assert matte([clip], tmp_path, tfjs_weights, "--formats", "exr,prores4444,alpha", "--frames", "0-7", *flags) == 0
    assert len(list(tmp_path.glob("bedroom_matte.*.exr"))) == 8

    code = matte([clip], tmp_path, tfjs_weights, "--formats", "exr", "--frames", "0-2", "--overwrite", *flags)
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bedroom.rvm.json"] + [
        f"bedroom_matte.{n:06d}.exr" for n in range(3)
    ], "old frames and the formats not rendered again are gone"
    manifest = _manifest(tmp_path, "bedroom")
    assert [(o["format"], o["first_frame"], o["last_frame"]) for o in manifest["outputs"]] == [("exr", 0, 2)]
    removed = [r.getMessage() for r in caplog.records if "earlier render" in r.getMessage()]
    assert all(r.levelno == logging.WARNING for r in caplog.records if "earlier render" in r.getMessage())
    assert len(removed) == 2, "each file removed from the earlier render is named in a warning"
    assert {Path(m.split()[1]).name for m in removed} == {"bedroom_matte.mov", "bedroom_alpha.mov"}


def test_overwrite_leaves_other_files_alone(tmp_path: Path, clips_dir: Path, tfjs_weights: Path) -> None:
    clip = clips_dir / "bedroom.mp4"
    keep = [tmp_path / "notes.txt", tmp_path / "bedroom_matte_v1.mov", tmp_path / "bedroom_matte.0001.exr"]
    for path in keep:
        path.write_bytes(b"the user's")
    for frames in ("0-3", "0-1"):
        assert matte([clip], tmp_path, tfjs_weights, "--formats", "exr", "--frames", frames, "--overwrite",
                     "--downsample-ratio", RATIO) == 0  # fmt: skip
    assert all(path.read_bytes() == b"the user's" for path in keep)
    assert sorted(p.name for p in tmp_path.glob("bedroom_matte.0000*.exr")) == [
        "bedroom_matte.000000.exr", "bedroom_matte.000001.exr"
    ]  # fmt: skip


def _timecode(path: Path) -> str | None:
    with av.open(str(path)) as container:
        return container.streams.video[0].metadata.get("timecode")


def test_movies_carry_the_timecode_of_their_first_source_frame(
    plate: Path, tmp_path: Path, clips_dir: Path, tfjs_weights: Path
) -> None:
    """Untagged sources count from 00:00:00:00: frame 45 of a 30 fps clip is 00:00:01:15, plate frame 1003
    at 24 fps is 00:00:41:19; so an editor's source range addresses the same frames in the matte."""
    from rvm_render.media.timecode import timecode_after

    clip = clips_dir / "bedroom.mp4"
    assert probe(clip).timecode is None and probe(clip).rate == 30
    assert matte([clip], tmp_path, tfjs_weights, "--formats", "prores4444,alpha", "--frames", "45-46",
                 "--downsample-ratio", RATIO) == 0  # fmt: skip
    for name in ("bedroom_matte.mov", "bedroom_alpha.mov"):
        assert _timecode(tmp_path / name) == "00:00:01:15" == timecode_after("00:00:00:00", 45, probe(clip).rate)
    assert matte([plate / "shot.####.png"], tmp_path, tfjs_weights, "--formats", "prores4444", "--frames",
                 "1003-1004", "--downsample-ratio", RATIO) == 0  # fmt: skip
    assert _timecode(tmp_path / "shot_matte.mov") == "00:00:41:19"
