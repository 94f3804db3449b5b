"""probe(): exact frame counts and rates of the shared clips, one-line errors for bad inputs."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import av
import pytest

from rvm_render.errors import UnreadableMediaError
from rvm_render.media.probe import probe

CLIPS = ["01_dog.mp4", "05_default_juggle.mp4", "bedroom.mp4"]


def demuxed_video_packets(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


def stream_facts(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        return {
            "rate": Fraction(video.average_rate),
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "has_audio": bool(container.streams.audio),
            "timecode": next(
                (s.metadata["timecode"] for s in (video, *container.streams.data) if "timecode" in s.metadata), None
            ),
        }


@pytest.mark.parametrize("name", CLIPS)
def test_probe_matches_demuxer(clips_dir: Path, name: str) -> None:
    path = clips_dir / name
    info = probe(path)
    facts = stream_facts(path)
    assert info.frames == demuxed_video_packets(path)
    assert info.rate == facts["rate"] and isinstance(info.rate, Fraction)
    assert (info.width, info.height) == (facts["width"], facts["height"])
    assert info.has_audio == facts["has_audio"]
    assert info.timecode == facts["timecode"]
    assert (info.codec_name, info.pix_fmt, info.bit_depth) == ("h264", "yuv420p", 8)
    assert not info.is_sequence and info.first_frame_number == 0
    assert info.pixel_aspect == Fraction(1)


def test_dog_rate_stays_ntsc_rational(clips_dir: Path) -> None:
    info = probe(clips_dir / "01_dog.mp4")
    assert info.rate == Fraction(30000, 1001)
    assert info.has_audio and info.timecode is not None


def assert_one_line_naming(err: pytest.ExceptionInfo[BaseException], path: Path) -> None:
    message = str(err.value)
    assert "\n" not in message
    assert path.name in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.mov"
    with pytest.raises(UnreadableMediaError) as err:
        probe(path)
    assert_one_line_naming(err, path)


def test_text_file_is_not_media(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(UnreadableMediaError) as err:
        probe(path)
    assert_one_line_naming(err, path)


def test_audio_only_file_has_no_video(clips_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "sound.m4a"
    with av.open(str(clips_dir / "01_dog.mp4")) as src, av.open(str(path), "w") as dst:
        audio = dst.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.size:
                packet.stream = audio
                dst.mux(packet)
    with pytest.raises(UnreadableMediaError) as err:
        probe(path)
    assert_one_line_naming(err, path)
    assert "no video stream" in str(err.value)


@pytest.mark.parametrize("name", ["01_dog.mp4", "bedroom.mp4"])
def test_truncated_clip_fails_at_probe(clips_dir: Path, tmp_path: Path, name: str) -> None:
    """01_dog has its moov first (packets go missing), bedroom last (header gone)."""
    data = (clips_dir / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: len(data) * 4 // 10])
    with pytest.raises(UnreadableMediaError) as err:
        probe(path)
    assert_one_line_naming(err, path)


def test_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnreadableMediaError) as err:
        probe(tmp_path)
    assert_one_line_naming(err, tmp_path)


def test_probe_accepts_str_paths(clips_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.mp4"
    shutil.copyfile(clips_dir / "bedroom.mp4", copy)
    assert probe(str(copy)).path == copy


def test_a_numbered_image_can_be_taken_as_a_still(clips_dir: Path, tmp_path: Path) -> None:
    """An editor's single-file reference to Name_V7_0003.png is a still, though numbered siblings lie beside it."""
    with av.open(str(clips_dir / "01_dog.mp4")) as container:
        frame = next(container.decode(video=0)).reformat(64, 36, format="rgb24")
    for number in (1, 2, 3, 5):
        frame.to_image().save(tmp_path / f"Name_V7_{number:04d}.png")
    with pytest.raises(UnreadableMediaError, match="gap"):
        probe(tmp_path / "Name_V7_0003.png")
    still = probe(tmp_path / "Name_V7_0003.png", still=True)
    assert (still.frames, still.first_frame_number, still.path.name) == (1, 0, "Name_V7_0003.png")
    assert (still.width, still.height) == (64, 36)
