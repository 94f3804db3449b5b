"""open_reader(): frame-accurate ranges, truncation is an error, image sequences read back."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from rvm_render.errors import MediaError, UnreadableMediaError
from rvm_render.media import MediaInfo, open_reader
from rvm_render.media.probe import probe
from rvm_render.media.writers import OutputFormat, open_writer


def test_seeked_range_equals_frames_decoded_from_start(dog_info: MediaInfo) -> None:
    with open_reader(dog_info, 0, 104) as reader:
        from_start = {f.index: f.rgb for f in reader}
    with open_reader(dog_info, 100, 104) as reader:
        seeked = list(reader)
    assert [f.index for f in seeked] == list(range(100, 105))
    for frame in seeked:
        assert np.array_equal(frame.rgb, from_start[frame.index])


def test_whole_clip_yields_probe_count(clips_dir: Path) -> None:
    info = probe(clips_dir / "bedroom.mp4")
    with open_reader(info) as reader:
        indices = [f.index for f in reader]
    assert indices == list(range(info.frames))


def test_frames_are_uint8_rgb(dog_info: MediaInfo) -> None:
    with open_reader(dog_info, 0, 0) as reader:
        frame = next(iter(reader))
    assert frame.rgb.shape == (dog_info.height, dog_info.width, 3) and frame.rgb.dtype == np.uint8


def test_range_outside_clip_is_refused(dog_info: MediaInfo) -> None:
    with pytest.raises(MediaError):
        open_reader(dog_info, 0, dog_info.frames)


def test_truncated_stream_raises_naming_expected_and_decoded(dog_info: MediaInfo, tmp_path: Path) -> None:
    data = dog_info.path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 4 // 10])
    stale = dataclasses.replace(dog_info, path=cut)  # as if the file was cut after probing
    with pytest.raises(UnreadableMediaError) as err, open_reader(stale) as reader:
        for _ in reader:
            pass
    message = str(err.value)
    assert "\n" not in message and "cut.mp4" in message and str(dog_info.frames) in message


def write_png_sequence(info: MediaInfo, frames: list, folder: Path) -> Path:
    writer = open_writer(OutputFormat.PNG, folder, "seq", info)
    for index, fgr, pha in frames:
        writer.write(index, fgr, pha)
    return writer.close().path


def test_png_sequence_round_trip(dog_info: MediaInfo, dog_frames: list, tmp_path: Path) -> None:
    pattern = write_png_sequence(dog_info, dog_frames, tmp_path)
    first_file = pattern.with_name(pattern.name % 3)
    hashes = pattern.with_name(pattern.name.replace("%06d", "######"))
    for spelling in (pattern, hashes, first_file):
        info = probe(spelling)
        assert info.is_sequence and info.frames == len(dog_frames) and info.first_frame_number == 0
        assert (info.width, info.height, info.bit_depth) == (dog_info.width, dog_info.height, 8)
    with open_reader(probe(pattern)) as reader:
        for frame, (index, fgr, _) in zip(reader, dog_frames, strict=True):
            assert frame.index == index
            assert np.array_equal(frame.rgb, np.rint(fgr * 255.0).astype(np.uint8))


def test_sequence_first_frame_number_and_range(dog_info: MediaInfo, dog_frames: list, tmp_path: Path) -> None:
    pattern = write_png_sequence(dog_info, dog_frames, tmp_path / "a")
    moved = tmp_path / "b"
    moved.mkdir()
    for offset, path in enumerate(sorted(pattern.parent.glob("seq_matte.*.png"))):
        shutil.copyfile(path, moved / f"plate.{1001 + offset:04d}.png")
    info = probe(moved / "plate.####.png")
    assert info.first_frame_number == 1001 and info.frames == len(dog_frames)
    with open_reader(info, 2, 4) as reader:
        got = [(f.index, f.rgb) for f in reader]
    assert [i for i, _ in got] == [2, 3, 4]
    assert np.array_equal(got[0][1], np.rint(dog_frames[2][1] * 255.0).astype(np.uint8))


def test_sequence_gap_is_an_error(dog_info: MediaInfo, dog_frames: list, tmp_path: Path) -> None:
    pattern = write_png_sequence(dog_info, dog_frames[:5], tmp_path)
    pattern.with_name(pattern.name % 2).unlink()
    with pytest.raises(UnreadableMediaError) as err:
        probe(pattern)
    assert "gap" in str(err.value) and "\n" not in str(err.value)


def test_sixteen_bit_png_and_exr_sequences_read_as_uint16(
    dog_info: MediaInfo, dog_frames: list, tmp_path: Path
) -> None:
    deep = dataclasses.replace(dog_info, bit_depth=10)
    frames = dog_frames[:2]
    for fmt in (OutputFormat.PNG, OutputFormat.EXR):
        writer = open_writer(fmt, tmp_path, "deep", deep)
        for index, fgr, pha in frames:
            writer.write(index, fgr, pha)
        info = probe(writer.close().path)
        assert info.bit_depth == 16 and info.frames == 2
        with open_reader(info) as reader:
            for frame, (_, fgr, _) in zip(reader, frames, strict=True):
                source = fgr.astype(np.float16).astype(np.float32) if fmt is OutputFormat.EXR else fgr
                expected = np.rint(np.clip(source, 0, 1) * 65535.0)
                assert frame.rgb.dtype == np.uint16
                assert np.abs(frame.rgb.astype(float) - expected).max() <= 1.0
