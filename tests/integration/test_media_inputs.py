"""Inputs beyond the shared H.264 clips: 10-bit ProRes, Matroska, a 10-bit HEVC encode."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from rvm_render.media import colour, open_reader
from rvm_render.media.probe import probe
from rvm_render.media.writers import OutputFormat, open_writer
from support.frames import short_clip

FRAMES = 6


def test_matroska_frame_count_comes_from_packets(clips_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "dog.mkv"
    short_clip(clips_dir / "01_dog.mp4", path, 48)
    with av.open(str(path)) as container:
        assert not container.streams.video[0].frames  # Matroska has no frame count in its header
    info = probe(path)
    assert info.frames == 48 and info.rate == Fraction(30000, 1001)


def test_ten_bit_prores_input_reads_as_uint16(clips_dir: Path, tmp_path: Path) -> None:
    """The grey-matte writer's ProRes 422 HQ is a 10-bit input: luma 64 + round(pha*876) decodes to pha."""
    dog = probe(clips_dir / "01_dog.mp4")
    ramp = np.tile(np.linspace(0.0, 1.0, dog.width, dtype=np.float32), (dog.height, 1))
    fgr = np.zeros((dog.height, dog.width, 3), dtype=np.float32)
    writer = open_writer(OutputFormat.ALPHA, tmp_path, "ramp", dog)
    for index in range(FRAMES):
        writer.write(index, fgr, ramp)
    info = probe(writer.close().path)
    assert (info.codec_name, info.pix_fmt, info.bit_depth) == ("prores", "yuv422p10le", 10)
    assert info.frames == FRAMES and info.rate == dog.rate and info.timecode == dog.timecode
    with open_reader(info, 2, 3) as reader:
        decoded = list(reader)
    assert [f.index for f in decoded] == [2, 3]
    expected = (np.rint(ramp * 876.0) / 876.0 * 65535.0)[..., None]
    for frame in decoded:
        assert frame.rgb.dtype == np.uint16
        assert np.abs(frame.rgb.astype(np.float64) - expected).max() <= 2 * 65535.0 / 876.0


def test_ten_bit_hevc_matches_numpy_decode(tmp_path: Path) -> None:
    if "libx265" not in av.codecs_available:
        pytest.skip("FFmpeg build has no libx265")
    path = tmp_path / "ten_bit.mp4"
    rng = np.random.default_rng(11)
    width, height = 128, 72
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx265", rate=24, options={"preset": "ultrafast", "x265-params": "log-level=error"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p10le"
        stream.codec_context.colorspace = 1
        stream.codec_context.color_range = 1
        for index in range(FRAMES):
            rgb = (rng.random((height, width, 3)) * 65535).astype(np.uint16)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(format="yuv420p10le")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    info = probe(path)
    assert (info.codec_name, info.bit_depth, info.frames) == ("hevc", 10, FRAMES)
    with av.open(str(path)) as container:
        first = next(container.decode(video=0))
    y, u, v = (np.frombuffer(p, np.uint16).reshape(p.height, -1)[:, : p.width].astype(np.float32) for p in first.planes)
    planes = np.stack([y, colour.chroma_upsampled(u, height, width), colour.chroma_upsampled(v, height, width)])
    expected = colour.ycbcr_to_rgb(planes, colorspace="bt709", color_range="tv", bit_depth=10) * 65535.0
    with open_reader(info, 0, 0) as reader:
        got = next(iter(reader)).rgb
    assert got.dtype == np.uint16 and np.abs(got.astype(np.float32) - expected).max() <= 1.0
