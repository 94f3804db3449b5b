"""Joining movie parts: packets remuxed as they are, audio and timecode as one pass; re-encode fallback."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import pytest

from rvm_render.errors import MediaError
from rvm_render.media import MediaInfo
from rvm_render.media.writers import OutputFormat, open_writer
from rvm_render.media.writers.comp import PIX_FMT as COMP_PIX_FMT
from rvm_render.media.writers.concat import MoviePart, concat_movie_parts, parts_can_be_remuxed

RANGES = ((0, 3), (4, 7), (8, 11))


def _write(
    fmt: OutputFormat, folder: Path, info: MediaInfo, frames: list, first: int, last: int, *, audio: bool
) -> Path:
    writer = open_writer(fmt, folder, "dog", info, audio=audio)
    for index, fgr, pha in frames[first : last + 1]:
        writer.write(index, fgr, pha)
    return writer.close().path


def _parts(fmt: OutputFormat, tmp_path: Path, info: MediaInfo, frames: list) -> list[MoviePart]:
    return [
        MoviePart(_write(fmt, tmp_path / f"part{first}", info, frames, first, last, audio=False), first, last)
        for first, last in RANGES
    ]


def _packets(path: Path, kind: str) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as container:
        return [(p.pts, bytes(p)) for p in container.demux(**{kind: 0}) if p.size]


def test_prores_parts_remux_into_the_single_pass_file(tmp_path: Path, dog_info: MediaInfo, dog_frames: list) -> None:
    parts = _parts(OutputFormat.PRORES4444, tmp_path, dog_info, dog_frames)
    single = _write(OutputFormat.PRORES4444, tmp_path / "single", dog_info, dog_frames, 0, 11, audio=True)
    joined = concat_movie_parts(OutputFormat.PRORES4444, parts, tmp_path / "dog_matte.mov", dog_info)
    assert (joined.first_frame, joined.last_frame) == (0, 11)
    assert _packets(joined.path, "video") == _packets(single, "video")
    assert _packets(joined.path, "audio") == _packets(single, "audio")
    with av.open(str(joined.path)) as ours, av.open(str(single)) as theirs:
        ours_ctx, theirs_ctx = ours.streams.video[0].codec_context, theirs.streams.video[0].codec_context
        for key in ("codec_tag", "profile", "pix_fmt"):
            assert getattr(ours_ctx, key) == getattr(theirs_ctx, key)
        assert ours.streams.video[0].metadata.get("timecode") == theirs.streams.video[0].metadata.get("timecode")
        assert ours.streams.video[0].average_rate == Fraction(30000, 1001)


def test_parts_that_disagree_are_encoded_again(tmp_path: Path, dog_info: MediaInfo, dog_frames: list,
                                               caplog: pytest.LogCaptureFixture) -> None:
    parts = _parts(OutputFormat.COMP, tmp_path, dog_info, dog_frames)
    odd = tmp_path / "odd.mp4"  # same codec and size, other encoder settings: other SPS/PPS
    with av.open(str(parts[1].path)) as source, av.open(str(odd), "w") as output:
        stream = output.add_stream("libx264", rate=dog_info.rate, options={"preset": "ultrafast", "crf": "30"})
        stream.width, stream.height, stream.pix_fmt = dog_info.width, dog_info.height, COMP_PIX_FMT
        for frame in source.decode(video=0):
            frame.pts = None
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    parts[1] = MoviePart(odd, parts[1].first_frame, parts[1].last_frame)
    assert not parts_can_be_remuxed(parts)
    with caplog.at_level(logging.WARNING):
        joined = concat_movie_parts(OutputFormat.COMP, parts, tmp_path / "dog_comp.mp4", dog_info)
    assert "encoding them again" in caplog.text
    with av.open(str(joined.path)) as container:
        video = container.streams.video[0]
        pts = sorted(frame.pts * video.time_base * dog_info.rate for frame in container.decode(video=0))
        assert pts == list(range(12))
        assert len(container.streams.audio) == 1


def test_gaps_and_short_parts_are_refused(tmp_path: Path, dog_info: MediaInfo, dog_frames: list) -> None:
    parts = _parts(OutputFormat.ALPHA, tmp_path, dog_info, dog_frames)
    with pytest.raises(MediaError, match="not consecutive"):
        concat_movie_parts(OutputFormat.ALPHA, [parts[0], parts[2]], tmp_path / "dog_alpha.mov", dog_info)
    claimed = [parts[0], parts[1], MoviePart(parts[2].path, 8, 12)]
    with pytest.raises(MediaError, match="holds 4 frames, expected 5"):
        concat_movie_parts(OutputFormat.ALPHA, claimed, tmp_path / "dog_alpha.mov", dog_info)
    assert not (tmp_path / "dog_alpha.mov").exists()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
