"""MediaInfo: what a clip is before anything decodes it (frames, rate, size, timecode, colour).

Containers are anything FFmpeg demuxes (mov/mp4/mkv/webm with H.264, H.265, ProRes, DNxHR,
8- or 10-bit). The frame count is exact: video packets are counted by demuxing (no decode),
and a container whose header promises more frames than it holds is reported as truncated.
Image sequences (PNG, JPEG, TIFF, DPX, OpenEXR) are named ``shot.%04d.exr``, ``shot.####.exr``,
or by any one frame of the run; the numbered frames must be contiguous. A path that exists is
always taken as it is, so ``take 100%.mp4`` and ``shot#1.mov`` are clips, not patterns
(:mod:`~rvm_render.media.frame_pattern` names sequences, with ``%%`` for a literal ``%``).

Colour is described by FFmpeg's names for the stream's tags: matrix (``colorspace``), range,
primaries and transfer (``color_primaries``, ``color_trc``); ``"unknown"`` when untagged.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final

import av
import numpy as np

from rvm_render.errors import UnreadableMediaError, UnsupportedFormatError
from rvm_render.media.colour import (
    color_primaries_name,
    color_range_name,
    color_trc_name,
    colorspace_name,
    primaries_of_chromaticities,
)
from rvm_render.media.frame_pattern import escaped, file_name_regex, frame_field, hashes_as_printf, unescaped

log = logging.getLogger(__name__)

__all__ = [
    "MediaInfo",
    "probe",
    "IMAGE_EXTENSIONS",
    "DEFAULT_SEQUENCE_RATE",
    "sequence_frame_path",
]

#: Extensions read as still images / image sequences.
IMAGE_EXTENSIONS: Final = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dpx", ".exr"})
#: Rate given to image sequences, which carry none (pass ``sequence_rate`` to override).
DEFAULT_SEQUENCE_RATE: Final = Fraction(24)

_NUMBERED_RE: Final = re.compile(r"^(.*?)(\d+)(\.[A-Za-z0-9]+)$")


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """One video input: a container's first video stream, or a numbered image sequence.

    ``path`` is the container, or for an image input the printf pattern (``shot.%04d.exr``;
    a single still image has no frame field, and ``%`` in a name is escaped as ``%%``).
    Frame index ``i`` (0-based, used inside rvm_render) is frame *number*
    ``first_frame_number + i``: the number in a sequence's file names, which users see and
    manifests record; for containers the two are the same.
    """

    path: Path
    frames: int
    rate: Fraction
    width: int
    height: int
    pixel_aspect: Fraction
    timecode: str | None
    has_audio: bool
    codec_name: str
    pix_fmt: str
    bit_depth: int
    colorspace: str
    color_range: str
    is_sequence: bool
    first_frame_number: int
    color_primaries: str = "unknown"
    color_trc: str = "unknown"
    timed: bool = True
    """Whether a container's frames carry distinct timestamps; False (every pts equal, as some muxers
    write them): frames are taken in decode order, never sought by time, and the rate comes from the
    codec or stream header instead of timestamps."""

    @property
    def last_frame_number(self) -> int:
        return self.first_frame_number + self.frames - 1

    def frame_number(self, frame_index: int) -> int:
        """The frame number (as in file names) of 0-based ``frame_index``."""
        return self.first_frame_number + frame_index

    def frame_index(self, frame_number: int) -> int:
        """The 0-based index of ``frame_number``."""
        return frame_number - self.first_frame_number


def sequence_frame_path(info: MediaInfo, frame_index: int) -> Path:
    """The file holding 0-based ``frame_index`` of an image sequence (a still: the image itself)."""
    name = info.path.name
    if frame_field(name) is None:
        return info.path.with_name(unescaped(name))
    return info.path.with_name(name % info.frame_number(frame_index))


def probe(
    path: str | os.PathLike[str], *, sequence_rate: Fraction = DEFAULT_SEQUENCE_RATE, still: bool = False
) -> MediaInfo:
    """Describe a clip or image sequence without decoding its pictures.

    Args:
        path: container file, sequence pattern (``%04d`` or ``####``) or one sequence frame.
        sequence_rate: frame rate to report for image sequences (they carry none).
        still: an existing image file is one still, even when its name is numbered and
            numbered siblings lie beside it (an editor's single-file reference).

    Returns:
        The :class:`MediaInfo`; ``rate`` is exact (30000/1001 stays 30000/1001).

    Raises:
        UnreadableMediaError: missing, not media, no video stream, corrupt or truncated.
        UnsupportedFormatError: an image sequence with an extension that is not handled.
    """
    text = os.fspath(path)
    candidate = Path(text)
    if not candidate.exists():
        pattern = _as_pattern(candidate)
        if pattern is None:
            raise UnreadableMediaError(f"cannot read '{text}': no such file; check the path")
        return _probe_sequence(_sequence_from_pattern(pattern), sequence_rate)
    if candidate.is_dir():
        raise UnreadableMediaError(
            f"cannot read '{text}': it is a folder; pass a clip, a frame of a sequence, or a pattern like name.%04d.exr"
        )
    if candidate.suffix.lower() in IMAGE_EXTENSIONS:
        if still:
            return _probe_sequence(_Sequence(candidate.with_name(escaped(candidate.name)), 0, 1), sequence_rate)
        return _probe_sequence(_sequence_from_frame(candidate), sequence_rate)
    return _probe_container(candidate)


# --- containers -------------------------------------------------------------------------


def _probe_container(path: Path) -> MediaInfo:
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as err:
        raise UnreadableMediaError(
            f"cannot read '{path}': {_reason(err)} (not a media file, or its header is missing); "
            "re-export or re-copy it"
        ) from err
    with container:
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
            raise UnreadableMediaError(
                f"cannot read '{path}': no video stream ({kinds}); pass a video clip or image sequence"
            )
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx.width <= 0 or ctx.height <= 0 or ctx.format is None:
            raise UnreadableMediaError(
                f"cannot read '{path}': video stream has no picture size or pixel format (corrupt header); "
                "re-export it"
            )
        frames, stored, timed = _count_video_packets(path, container, stream)
        rate = _stream_rate(stream, timed)
        if rate is None:
            raise UnreadableMediaError(
                f"cannot read '{path}': video stream has no frame rate; re-export it with a constant frame rate"
            )
        header_frames = int(stream.frames or 0)
        timecode = _container_timecode(container, stream)
        has_audio = bool(container.streams.audio)
        codec_name = ctx.name
        pix_fmt = ctx.format.name
        bit_depth = max(c.bits for c in ctx.format.components)
        colorspace = colorspace_name(ctx.colorspace)
        color_range = color_range_name(ctx.color_range)
        color_primaries = color_primaries_name(ctx.color_primaries)
        color_trc = color_trc_name(ctx.color_trc)
        aspect = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        pixel_aspect = Fraction(aspect) if aspect else Fraction(1)
    if frames == 0:
        raise UnreadableMediaError(f"cannot read '{path}': video stream holds no frames; re-export it")
    if header_frames and stored < header_frames:
        raise UnreadableMediaError(
            f"cannot read '{path}': truncated, header lists {header_frames} frames but only {stored} "
            "are in the file; re-copy or re-export it"
        )
    return MediaInfo(
        path=path,
        frames=frames,
        rate=rate,
        width=ctx.width,
        height=ctx.height,
        pixel_aspect=pixel_aspect,
        timecode=timecode,
        has_audio=has_audio,
        codec_name=codec_name,
        pix_fmt=pix_fmt,
        bit_depth=bit_depth,
        colorspace=colorspace,
        color_range=color_range,
        is_sequence=False,
        first_frame_number=0,
        color_primaries=color_primaries,
        color_trc=color_trc,
        timed=timed,
    )


def _reason(err: BaseException) -> str:
    """FFmpeg's reason without the file name and errno PyAV add."""
    strerror = getattr(err, "strerror", None)
    return (strerror or str(err)).rstrip(".").lower()


def _stream_rate(stream: av.video.stream.VideoStream, timed: bool) -> Fraction | None:
    """The frame rate: the average of the timestamps, else what the headers say (also when every pts is equal)."""
    for rate in (stream.average_rate if timed else None, stream.guessed_rate, stream.base_rate,
                 stream.codec_context.framerate):  # fmt: skip
        if rate:
            return Fraction(rate.numerator, rate.denominator)
    return None


def _container_timecode(container: av.container.InputContainer, video: av.video.stream.VideoStream) -> str | None:
    """Start timecode from the video stream, a tmcd data stream, or the container."""
    for metadata in (video.metadata, *(s.metadata for s in container.streams.data), container.metadata):
        value = metadata.get("timecode")
        if value:
            return value
    return None


def _count_video_packets(
    path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> tuple[int, int, bool]:
    """(frames shown, packets stored, whether their timestamps differ) by demuxing the video stream; no decoding.

    Packets flagged discard (outside an edit list) are stored but not shown.
    """
    shown = stored = 0
    stamps: set[int] = set()
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            stored += 1
            if packet.pts is not None and len(stamps) < 2:
                stamps.add(packet.pts)
            if not packet.is_discard:
                shown += 1
    except av.error.FFmpegError as err:
        raise UnreadableMediaError(
            f"cannot read '{path}': corrupt after video packet {stored} ({_reason(err)}); re-copy or re-export it"
        ) from err
    return shown, stored, stored < 2 or len(stamps) > 1


# --- image sequences --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sequence:
    pattern: Path  # printf pattern, or the still image itself
    first: int
    count: int


def _as_pattern(path: Path) -> Path | None:
    """``path`` as a printf pattern when its name has a frame field (``%04d``, or ``####`` in an image name)."""
    field = frame_field(path.name)
    if field is not None:  # a lone '%' typed in the name is taken literally: escape it
        name = path.name
        return path.with_name(escaped(field.prefix(name)) + name[field.start : field.end] + escaped(field.suffix(name)))
    from_hashes = hashes_as_printf(path.name)
    if from_hashes is not None and path.suffix.lower() in IMAGE_EXTENSIONS:
        return path.with_name(from_hashes)
    if "%%" in path.name and path.with_name(unescaped(path.name)).exists():
        return path  # an escaped still image, as manifests and plans name one
    return None


def _sequence_from_pattern(pattern: Path) -> _Sequence:
    name = pattern.name
    _check_image_extension(pattern.with_name(unescaped(name)))
    field = frame_field(name)
    if field is None:
        return _Sequence(pattern=pattern, first=0, count=1)
    numbers = _numbers_in(pattern.parent, file_name_regex(name, field), pattern)
    if not numbers:
        raise UnreadableMediaError(f"cannot read '{pattern}': no frames match this pattern; check the path and padding")
    return _contiguous(pattern, numbers)


def _sequence_from_frame(frame: Path) -> _Sequence:
    _check_image_extension(frame)
    match = _NUMBERED_RE.match(frame.name)
    if match is None:
        return _Sequence(pattern=frame.with_name(escaped(frame.name)), first=0, count=1)
    prefix, digits, suffix = match.groups()
    regex = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + r"\Z")
    found = [(len(m.group(1)), int(m.group(1))) for m in _matches_in(frame.parent, regex)]
    padded = len(digits) > 1 and digits.startswith("0") or all(n == len(digits) for n, _ in found)
    if padded:
        numbers = sorted(num for n, num in found if n == len(digits))
        field = f"%0{len(digits)}d"
    else:
        numbers = sorted(num for n, num in found if n == len(str(num)))
        field = "%d"
    return _contiguous(frame.with_name(escaped(prefix) + field + escaped(suffix)), numbers)


def _matches_in(folder: Path, regex: re.Pattern[str]) -> list[re.Match[str]]:
    try:
        names = os.listdir(folder)
    except OSError as err:
        raise UnreadableMediaError(f"cannot read folder '{folder}': {err.strerror}; check the path") from err
    return [m for m in map(regex.match, names) if m]


def _numbers_in(folder: Path, regex: re.Pattern[str], pattern: Path) -> list[int]:
    if not folder.is_dir():
        raise UnreadableMediaError(f"cannot read '{pattern}': folder '{folder}' does not exist; check the path")
    return sorted({int(m.group(1)) for m in _matches_in(folder, regex)})


def _contiguous(pattern: Path, numbers: list[int]) -> _Sequence:
    first, last = numbers[0], numbers[-1]
    if last - first + 1 != len(numbers):
        present = set(numbers)
        missing = next(n for n in range(first, last + 1) if n not in present)
        raise UnreadableMediaError(
            f"image sequence '{pattern}' has a gap: frame {missing} is missing "
            f"({len(numbers)} files for frames {first}-{last}); render the missing frames or split the sequence"
        )
    return _Sequence(pattern=pattern, first=first, count=len(numbers))


def _check_image_extension(path: Path) -> None:
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise UnsupportedFormatError(
            f"cannot read image sequence '{path}': extension '{path.suffix}' is not handled; "
            f"use one of {', '.join(sorted(IMAGE_EXTENSIONS))}"
        )


def _probe_sequence(seq: _Sequence, rate: Fraction) -> MediaInfo:
    name = seq.pattern.name
    first_path = seq.pattern.with_name(name % seq.first if frame_field(name) else unescaped(name))
    if first_path.suffix.lower() == ".exr":
        header = _exr_header(first_path)
    else:
        header = _image_header(first_path)
    return MediaInfo(
        path=seq.pattern,
        frames=seq.count,
        rate=Fraction(rate),
        width=header.width,
        height=header.height,
        pixel_aspect=Fraction(1),
        timecode=None,
        has_audio=False,
        codec_name=header.codec_name,
        pix_fmt=header.pix_fmt,
        bit_depth=header.bit_depth,
        colorspace=header.colorspace,
        color_range=header.color_range,
        is_sequence=True,
        first_frame_number=seq.first,
        color_primaries=header.color_primaries,
        color_trc=header.color_trc,
    )


@dataclass(frozen=True, slots=True)
class _ImageHeader:
    width: int
    height: int
    codec_name: str
    pix_fmt: str
    bit_depth: int
    colorspace: str
    color_range: str
    color_primaries: str
    color_trc: str


def _image_header(path: Path) -> _ImageHeader:
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frame = next(container.decode(stream))
    except (av.error.FFmpegError, IndexError, StopIteration) as err:
        raise UnreadableMediaError(f"cannot read image '{path}': not a readable image; re-export it") from err
    fmt = frame.format
    return _ImageHeader(
        width=frame.width,
        height=frame.height,
        codec_name=stream.codec_context.name,
        pix_fmt=fmt.name,
        bit_depth=max(c.bits for c in fmt.components),
        colorspace="gbr" if fmt.is_rgb else colorspace_name(frame.colorspace),
        color_range="pc" if fmt.is_rgb else color_range_name(frame.color_range),
        color_primaries=color_primaries_name(frame.color_primaries),
        color_trc=color_trc_name(frame.color_trc),
    )


def _exr_header(path: Path) -> _ImageHeader:
    """Size and depth of an OpenEXR frame; primaries from its ``chromaticities`` (default BT.709).

    OpenEXR pixels are linear by convention; rvm_render reads them as they are (see
    :mod:`~rvm_render.media.reader`), so the transfer is reported as ``linear``.
    """
    import OpenEXR

    try:
        exr = OpenEXR.File(str(path), separate_channels=True)
        channels, header = exr.channels(), exr.header()
    except Exception as err:  # the binding raises bare RuntimeError/ValueError
        raise UnreadableMediaError(f"cannot read EXR '{path}': {err}; re-export it") from err
    if not {"R", "G", "B"} <= channels.keys():
        raise UnsupportedFormatError(
            f"cannot read EXR '{path}': needs R, G, B channels, has {sorted(channels)}; re-export as RGB(A)"
        )
    red = channels["R"].pixels
    pixel_type = "half" if red.dtype == np.float16 else "float"
    height, width = red.shape
    chromaticities = header.get("chromaticities")
    return _ImageHeader(
        width=width,
        height=height,
        codec_name="exr",
        pix_fmt=f"exr_{pixel_type}",
        bit_depth=16 if pixel_type == "half" else 32,
        colorspace="gbr",
        color_range="pc",
        color_primaries="bt709" if chromaticities is None else primaries_of_chromaticities(chromaticities),
        color_trc="linear",
    )
