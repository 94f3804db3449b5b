"""MediaInfo: what a clip is before anything decodes it (frames, rate, size, timecode, colour).

Containers are anything FFmpeg demuxes (mov/mp4/mkv/webm with H.264, H.265, ProRes, DNxHR,
8- or 10-bit). The frame count is exact: video packets are counted by demuxing (no decode),
and a container whose header promises more frames than it holds is reported as truncated.
Image sequences (PNG, JPEG, TIFF, DPX, OpenEXR) are named ``shot.%04d.exr``, ``shot.####.exr``,
or by any one frame of the run; the numbered frames must be contiguous.
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
from rvm_render.media.colour import color_range_name, colorspace_name

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

_PRINTF_RE: Final = re.compile(r"%0?(\d*)d")
_HASHES_RE: Final = re.compile(r"#+")
_NUMBERED_RE: Final = re.compile(r"^(.*?)(\d+)(\.[A-Za-z0-9]+)$")


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """One video input: a container's first video stream, or a numbered image sequence.

    ``path`` is the container, or for a sequence the printf pattern (``shot.%04d.exr``;
    a single still image keeps its own name). Frame ``i`` of a sequence is the file
    ``sequence_frame_path(info, i)`` numbered ``first_frame_number + i``.
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


def sequence_frame_path(info: MediaInfo, frame_index: int) -> Path:
    """The file holding 0-based ``frame_index`` of an image sequence."""
    name = info.path.name
    if "%" not in name:
        return info.path
    return info.path.with_name(name % (info.first_frame_number + frame_index))


def probe(path: str | os.PathLike[str], *, sequence_rate: Fraction = DEFAULT_SEQUENCE_RATE) -> MediaInfo:
    """Describe a clip or image sequence without decoding its pictures.

    Args:
        path: container file, sequence pattern (``%04d`` or ``####``) or one sequence frame.
        sequence_rate: frame rate to report for image sequences (they carry none).

    Returns:
        The :class:`MediaInfo`; ``rate`` is exact (30000/1001 stays 30000/1001).

    Raises:
        UnreadableMediaError: missing, not media, no video stream, corrupt or truncated.
        UnsupportedFormatError: an image sequence with an extension that is not handled.
    """
    text = os.fspath(path)
    candidate = Path(text)
    if _PRINTF_RE.search(candidate.name) or _HASHES_RE.search(candidate.name):
        return _probe_sequence(_sequence_from_pattern(candidate), sequence_rate)
    if not candidate.exists():
        raise UnreadableMediaError(f"cannot read '{text}': no such file; check the path")
    if candidate.is_dir():
        raise UnreadableMediaError(
            f"cannot read '{text}': it is a folder; pass a clip, a frame of a sequence, or a pattern like name.%04d.exr"
        )
    if candidate.suffix.lower() in IMAGE_EXTENSIONS:
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
        rate = _stream_rate(stream)
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
        aspect = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        pixel_aspect = Fraction(aspect) if aspect else Fraction(1)
        frames, stored = _count_video_packets(path, container, stream)
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
    )


def _reason(err: BaseException) -> str:
    """FFmpeg's reason without the file name and errno PyAV add."""
    strerror = getattr(err, "strerror", None)
    return (strerror or str(err)).rstrip(".").lower()


def _stream_rate(stream: av.video.stream.VideoStream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
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
) -> tuple[int, int]:
    """(frames shown, packets stored) by demuxing the video stream; no decoding.

    Packets flagged discard (outside an edit list) are stored but not shown.
    """
    shown = stored = 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            stored += 1
            if not packet.is_discard:
                shown += 1
    except av.error.FFmpegError as err:
        raise UnreadableMediaError(
            f"cannot read '{path}': corrupt after video packet {stored} ({_reason(err)}); re-copy or re-export it"
        ) from err
    return shown, stored


# --- image sequences --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sequence:
    pattern: Path  # printf pattern, or the still image itself
    first: int
    count: int


def _sequence_from_pattern(pattern: Path) -> _Sequence:
    name = pattern.name
    hashes = _HASHES_RE.search(name)
    if hashes and not _PRINTF_RE.search(name):
        name = name[: hashes.start()] + f"%0{len(hashes.group())}d" + name[hashes.end() :]
    match = _PRINTF_RE.search(name)
    assert match is not None
    prefix, suffix = name[: match.start()], name[match.end() :]
    width = int(match.group(1) or 0)
    _check_image_extension(pattern.with_name(name))
    folder = pattern.parent
    digits = rf"\d{{{width}}}" if width and name[match.start() + 1] == "0" else r"\d+"
    regex = re.compile(re.escape(prefix) + f"({digits})" + re.escape(suffix) + r"\Z")
    numbers = _numbers_in(folder, regex, pattern)
    if not numbers:
        raise UnreadableMediaError(f"cannot read '{pattern}': no frames match this pattern; check the path and padding")
    return _contiguous(pattern.with_name(name), numbers)


def _sequence_from_frame(frame: Path) -> _Sequence:
    _check_image_extension(frame)
    match = _NUMBERED_RE.match(frame.name)
    if match is None:
        return _Sequence(pattern=frame, first=0, count=1)
    prefix, digits, suffix = match.groups()
    regex = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + r"\Z")
    found = [(len(m.group(1)), int(m.group(1))) for m in _matches_in(frame.parent, regex)]
    padded = len(digits) > 1 and digits.startswith("0") or all(n == len(digits) for n, _ in found)
    if padded:
        numbers = sorted(num for n, num in found if n == len(digits))
        name = f"{prefix}%0{len(digits)}d{suffix}"
    else:
        numbers = sorted(num for n, num in found if n == len(str(num)))
        name = f"{prefix}%d{suffix}"
    return _contiguous(frame.with_name(name), numbers)


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
    first_path = seq.pattern.with_name(name % seq.first) if "%" in name else seq.pattern
    if first_path.suffix.lower() == ".exr":
        width, height, codec_name, pix_fmt, bit_depth = _exr_header(first_path)
        colorspace, color_range = "gbr", "pc"
    else:
        width, height, codec_name, pix_fmt, bit_depth, colorspace, color_range = _image_header(first_path)
    return MediaInfo(
        path=seq.pattern,
        frames=seq.count,
        rate=Fraction(rate),
        width=width,
        height=height,
        pixel_aspect=Fraction(1),
        timecode=None,
        has_audio=False,
        codec_name=codec_name,
        pix_fmt=pix_fmt,
        bit_depth=bit_depth,
        colorspace=colorspace,
        color_range=color_range,
        is_sequence=True,
        first_frame_number=seq.first,
    )


def _image_header(path: Path) -> tuple[int, int, str, str, int, str, str]:
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frame = next(container.decode(stream))
    except (av.error.FFmpegError, IndexError, StopIteration) as err:
        raise UnreadableMediaError(f"cannot read image '{path}': not a readable image; re-export it") from err
    fmt = frame.format
    bit_depth = max(c.bits for c in fmt.components)
    colorspace = "gbr" if fmt.is_rgb else colorspace_name(frame.colorspace)
    color_range = "pc" if fmt.is_rgb else color_range_name(frame.color_range)
    return frame.width, frame.height, stream.codec_context.name, fmt.name, bit_depth, colorspace, color_range


def _exr_header(path: Path) -> tuple[int, int, str, str, int]:
    import OpenEXR

    try:
        channels = OpenEXR.File(str(path), separate_channels=True).channels()
    except Exception as err:  # the binding raises bare RuntimeError/ValueError
        raise UnreadableMediaError(f"cannot read EXR '{path}': {err}; re-export it") from err
    if not {"R", "G", "B"} <= channels.keys():
        raise UnsupportedFormatError(
            f"cannot read EXR '{path}': needs R, G, B channels, has {sorted(channels)}; re-export as RGB(A)"
        )
    red = channels["R"].pixels
    pixel_type = "half" if red.dtype == np.float16 else "float"
    height, width = red.shape
    return width, height, "exr", f"exr_{pixel_type}", 16 if pixel_type == "half" else 32
