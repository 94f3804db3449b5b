"""Deliverables written from real 01_dog frames, decoded again and compared with their inputs."""

from __future__ import annotations

import os
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import OpenEXR
import pytest

from rvm_render.media import MediaInfo, colour, open_reader
from rvm_render.media.probe import probe
from rvm_render.media.timecode import timecode_after
from rvm_render.media.writers import OutputFormat, WrittenOutput, open_writer, parse_background
from rvm_render.media.writers.comp import composite
from rvm_render.media.writers.exr import ExrWriter
from rvm_render.media.writers.output import output_path
from rvm_render.media.writers.sequence import SequenceWriter
from support.frames import luma_matte, planes_of

FRAMES = 12


@pytest.fixture(scope="module")
def dog(clips_dir: Path) -> MediaInfo:
    return probe(clips_dir / "01_dog.mp4")


def source_frames(info: MediaInfo, first: int, count: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    out = []
    with open_reader(info, first, first + count - 1) as reader:
        for decoded in reader:
            fgr = decoded.rgb.astype(np.float32) / 255.0
            out.append((decoded.index, fgr, luma_matte(fgr)))
    return out


@pytest.fixture(scope="module")
def frames(dog: MediaInfo) -> list[tuple[int, np.ndarray, np.ndarray]]:
    return source_frames(dog, 0, FRAMES)


def render(fmt: OutputFormat, info: MediaInfo, frames: list, folder: Path, **kwargs: object) -> WrittenOutput:
    writer = open_writer(fmt, folder, "dog", info, **kwargs)
    for index, fgr, pha in frames:
        writer.write(index, fgr, pha)
    return writer.close()


def test_prores4444_alpha_and_colour_round_trip(dog: MediaInfo, frames: list, tmp_path: Path) -> None:
    written = render(OutputFormat.PRORES4444, dog, frames, tmp_path)
    assert written.path == tmp_path / "dog_matte.mov" and (written.first_frame, written.last_frame) == (0, FRAMES - 1)
    with av.open(str(written.path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        assert ctx.name == "prores" and ctx.profile == "4444" and stream.codec_tag == "ap4h"
        assert ctx.format.name.startswith("yuva444p")
        assert (ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range) == (1, 1, 1, 1)
        assert Fraction(stream.average_rate) == dog.rate and stream.frames == FRAMES
        first_packet = bytes(next(p for p in container.demux(stream) if p.size))
        assert first_packet[4:8] == b"icpf" and first_packet[12:16] == b"apl0"  # ProRes frame header vendor
        container.seek(0)
        decoded = list(container.decode(stream))
    assert len(decoded) == FRAMES
    for frame, (_, fgr, pha) in zip(decoded, frames, strict=True):
        y, cb, cr, alpha = planes_of(frame.reformat(format="yuva444p10le"))
        assert np.abs(alpha - np.rint(pha * 1023.0)).max() <= 1
        rgb = colour.ycbcr_to_rgb(np.stack([y, cb, cr]), colorspace="bt709", color_range="tv", bit_depth=10)
        error = np.abs(rgb - fgr) * 255.0
        assert error.mean() < 0.5 and np.percentile(error, 99.9) < 3.0


def test_prores4444_keeps_audio_rate_and_timecode(dog: MediaInfo, tmp_path: Path) -> None:
    first = 30
    written = render(OutputFormat.PRORES4444, dog, source_frames(dog, first, FRAMES), tmp_path)
    assert (written.first_frame, written.last_frame) == (first, first + FRAMES - 1)
    with av.open(str(dog.path)) as src, av.open(str(written.path)) as out:
        src_audio, out_audio = src.streams.audio[0], out.streams.audio[0]
        assert out_audio.codec_context.name == src_audio.codec_context.name
        assert out_audio.codec_context.sample_rate == src_audio.codec_context.sample_rate
        assert out_audio.codec_context.channels == src_audio.codec_context.channels
        video = out.streams.video[0]
        assert Fraction(video.average_rate) == Fraction(30000, 1001) == dog.rate
        assert video.time_base * video.duration == Fraction(FRAMES) / dog.rate
        packets = [p for p in out.demux(out_audio) if p.size]
        audio_end = max(p.pts + p.duration for p in packets) * out_audio.time_base
        audio_start = min(p.pts for p in packets) * out_audio.time_base
        packet_s = max(p.duration for p in packets) * out_audio.time_base
        assert abs(audio_start) <= packet_s
        assert abs(audio_end - Fraction(FRAMES) / dog.rate) <= packet_s
        timecodes = {s.metadata.get("timecode") for s in (video, *out.streams.data)} - {None}
        assert timecodes == {timecode_after(dog.timecode, first, dog.rate)}


def test_exr_channels_type_compression_and_values(dog: MediaInfo, frames: list, tmp_path: Path) -> None:
    written = render(OutputFormat.EXR, dog, frames[:3], tmp_path)
    assert written.path == tmp_path / "dog_matte.%06d.exr"
    for index, fgr, pha in frames[:3]:
        path = tmp_path / (written.path.name % index)
        exr = OpenEXR.File(str(path), separate_channels=True)
        channels = exr.channels()
        assert sorted(channels) == ["A", "B", "G", "R"]
        assert exr.header()["compression"] == OpenEXR.ZIP_COMPRESSION
        for name, expected in (("R", fgr[..., 0]), ("G", fgr[..., 1]), ("B", fgr[..., 2]), ("A", pha)):
            pixels = channels[name].pixels
            assert pixels.dtype == np.float16
            assert np.array_equal(pixels, expected.astype(np.float16))


def test_alpha_matte_luma_equals_matte(dog: MediaInfo, frames: list, tmp_path: Path) -> None:
    written = render(OutputFormat.ALPHA, dog, frames, tmp_path)
    assert written.path == tmp_path / "dog_alpha.mov"
    with av.open(str(written.path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "prores" and stream.codec_context.profile == "HQ"
        assert Fraction(stream.average_rate) == dog.rate
        assert container.streams.audio, "the grey matte keeps the source audio"
        decoded = list(container.decode(stream))
    assert len(decoded) == FRAMES
    for frame, (_, _, pha) in zip(decoded, frames, strict=True):
        y, cb, cr = planes_of(frame.reformat(format="yuv422p10le"))
        error = np.abs(y - (64 + np.rint(pha * 876.0)))
        assert error.mean() < 0.25 and error.max() <= 8
        assert np.abs(cb - 512).max() <= 2 and np.abs(cr - 512).max() <= 2


def test_comp_over_colour(dog: MediaInfo, frames: list, tmp_path: Path) -> None:
    background = parse_background("#2040c0")
    written = render(OutputFormat.COMP, dog, frames, tmp_path, background=background)
    assert written.path == tmp_path / "dog_comp.mp4"
    info = probe(written.path)
    assert info.frames == FRAMES and info.rate == dog.rate and info.has_audio
    assert (info.codec_name, info.pix_fmt, info.colorspace, info.color_range) == ("h264", "yuv420p", "bt709", "tv")
    bg = np.broadcast_to(np.asarray(background.colour, np.float32), frames[0][1].shape)
    with open_reader(info) as reader:
        for decoded, (_, fgr, pha) in zip(reader, frames, strict=True):
            expected = composite(fgr, pha, bg) * 255.0
            assert np.abs(decoded.rgb.astype(np.float32) - expected).mean() < 3.0


def test_comp_over_video_background(dog: MediaInfo, frames: list, clips_dir: Path, tmp_path: Path) -> None:
    background = parse_background(str(clips_dir / "bedroom.mp4"))
    assert background.kind == "video"
    written = render(OutputFormat.COMP, dog, frames[:3], tmp_path, background=background)
    assert probe(written.path).frames == 3


def test_png_sequence_is_rgba_straight(dog: MediaInfo, frames: list, tmp_path: Path) -> None:
    written = render(OutputFormat.PNG, dog, frames[:2], tmp_path)
    index, fgr, pha = frames[1]
    with av.open(str(tmp_path / (written.path.name % index))) as container:
        rgba = next(container.decode(video=0)).to_ndarray(format="rgba")
    assert np.array_equal(rgba[..., :3], np.rint(fgr * 255.0).astype(np.uint8))
    assert np.array_equal(rgba[..., 3], np.rint(pha * 255.0).astype(np.uint8))


def test_exr_frames_are_packed_and_written_on_one_thread_per_core(
    dog: MediaInfo, frames: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cores = 6
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    all_cores_busy = threading.Barrier(cores, timeout=30)  # passes only when `cores` frames are packed at once
    threads: set[str] = set()

    class ThreadRecordingExrWriter(ExrWriter):
        def prepare(self, fgr: np.ndarray, pha: np.ndarray) -> np.ndarray:
            threads.add(threading.current_thread().name)
            all_cores_busy.wait()
            return super().prepare(fgr, pha)

    writer = ThreadRecordingExrWriter(output_path(OutputFormat.EXR, tmp_path, "dog"), dog)
    for index, fgr, pha in frames:  # 2 x cores frames
        writer.write(index, fgr, pha)
    written = writer.close()
    assert writer.max_pending == cores + SequenceWriter.QUEUED_FRAMES
    assert len(threads) == cores and threading.current_thread().name not in threads
    with OpenEXR.File(str(tmp_path / (written.path.name % 3)), separate_channels=True) as exr:
        alpha = np.asarray(exr.channels()["A"].pixels)
    assert np.array_equal(alpha, frames[3][2].astype(np.float16))


def test_prores4444_encodes_with_frame_threads_on_every_core(dog: MediaInfo, frames: list, tmp_path: Path) -> None:
    writer = open_writer(OutputFormat.PRORES4444, tmp_path, "dog", dog)
    packets_after: list[int] = []
    for index, fgr, pha in frames[:3]:
        writer.write(index, fgr, pha)
        packets_after.append(writer._stream.frames)  # packets muxed so far
    assert writer.encoder_threads == ("AUTO", os.cpu_count())
    # frame threading holds back the first thread_count - 1 pictures; slice threading returns each at once
    assert packets_after[0] == (0 if os.cpu_count() > 1 else 1)
    writer.close()
