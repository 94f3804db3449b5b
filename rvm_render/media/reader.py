"""open_reader(): decoded R'G'B' frames of a clip or image sequence, with their frame index.

Y'CbCr is converted by the standard the stream is tagged with (BT.709 when untagged) and its
range (limited unless tagged full), see :mod:`rvm_render.media.colour`. 8-bit sources give
uint8 frames, deeper sources uint16 on the full 16-bit scale (0..65535). Seeking is frame
accurate: seek to the keyframe before ``first_frame`` and drop frames by their pts (a clip whose
frames all carry the same pts is decoded from the start and counted in decode order). A stream
that ends before ``last_frame`` raises instead of yielding fewer frames.

OpenEXR frames are taken as display-referred: R, G, B are clipped to 0..1 and scaled to
uint16 without any transfer function (a linear EXR looks darker than its viewer shows it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Final

import av
import numpy as np

from rvm_render.errors import MediaError, UnreadableMediaError
from rvm_render.media import colour
from rvm_render.media.probe import MediaInfo, sequence_frame_path

log = logging.getLogger(__name__)

__all__ = ["DecodedFrame", "FrameReader", "open_reader", "frame_to_rgb", "decode_image", "image_rgb", "exr_rgb"]

_PLANAR_YUV_RE: Final = re.compile(r"^yuva?(444|422|420|440|411|410)p(\d+)?(le|be)?$")


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One decoded picture.

    Shape:
        rgb: [H, W, 3] uint8 (8-bit sources) or uint16 full scale (deeper sources)
    """

    index: int
    rgb: np.ndarray


def open_reader(info: MediaInfo, first_frame: int = 0, last_frame: int | None = None) -> FrameReader:
    """Open ``info``'s frames ``first_frame``..``last_frame`` (inclusive, 0-based) for decoding.

    Args:
        info: from :func:`rvm_render.media.probe.probe`.
        first_frame: first frame index to yield.
        last_frame: last frame index to yield; ``None`` for the clip's last frame.

    Returns:
        A :class:`FrameReader` (context manager, iterator of :class:`DecodedFrame`).

    Raises:
        MediaError: the range lies outside the clip.
        UnreadableMediaError: (while iterating) the stream is corrupt or ends early.
    """
    last = info.frames - 1 if last_frame is None else last_frame
    if not 0 <= first_frame <= last < info.frames:
        raise MediaError(
            f"frame range {first_frame}-{last} is outside '{info.path}' (frames 0-{info.frames - 1}); "
            "pick a range inside the clip"
        )
    return FrameReader(info, first_frame, last)


class FrameReader:
    """Iterator of :class:`DecodedFrame` over an inclusive frame range; close it when done."""

    def __init__(self, info: MediaInfo, first_frame: int, last_frame: int) -> None:
        self.info = info
        self.first_frame = first_frame
        self.last_frame = last_frame
        self._container: av.container.InputContainer | None = None
        self._wide = info.bit_depth > 8
        self._colorspace = colour.colorspace_for(info.colorspace)
        self._color_range = colour.color_range_for(info.color_range)
        self._iterator: Iterator[DecodedFrame] = (
            self._sequence_frames() if info.is_sequence else self._container_frames()
        )

    def __iter__(self) -> Iterator[DecodedFrame]:
        return self

    def __next__(self) -> DecodedFrame:
        return next(self._iterator)

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop decoding and release the file."""
        if self._container is not None:
            self._container.close()
            self._container = None

    # --- containers -------------------------------------------------------------------

    def _open(self) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
        path = self.info.path
        try:
            container = av.open(str(path), metadata_errors="ignore")
        except av.error.FFmpegError as err:
            raise UnreadableMediaError(f"cannot read '{path}': {err}; check the file is still there") from err
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        self._container = container
        return container, stream

    def _container_frames(self) -> Iterator[DecodedFrame]:
        container, stream = self._open()
        try:
            yield from self._decode_range(container, stream, from_start=not self._seek(container, stream))
        finally:
            self.close()

    def _seek(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> bool:
        """Seek to the keyframe before ``first_frame``; False when decoding from the start."""
        if self.first_frame == 0 or stream.time_base is None or not self.info.timed:
            return False
        origin = stream.start_time or 0
        target = origin + int(Fraction(self.first_frame) / self.info.rate / stream.time_base)
        try:
            container.seek(target, stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            log.debug("seek failed in %s; decoding from the start", self.info.path)
            container.seek(0, stream=stream, backward=True)
            return False
        return True

    def _index_of(self, frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> int | None:
        if frame.pts is None or stream.time_base is None:
            return None
        seconds = (frame.pts - (stream.start_time or 0)) * stream.time_base
        return round(seconds * self.info.rate)

    def _decode_range(
        self,
        container: av.container.InputContainer,
        stream: av.video.stream.VideoStream,
        *,
        from_start: bool,
    ) -> Iterator[DecodedFrame]:
        """Decode and yield the range; after a seek the first frame's pts gives its index."""
        path = self.info.path
        index: int | None = -1 if from_start else None
        wanted = self.last_frame - self.first_frame + 1
        done = 0
        try:
            for frame in container.decode(stream):
                if index is None:
                    index = self._index_of(frame, stream)
                    if index is None or index > self.first_frame:
                        log.debug("seek in %s landed past frame %s; decoding from the start", path, self.first_frame)
                        container.seek(0, stream=stream, backward=True)
                        yield from self._decode_range(container, stream, from_start=True)
                        return
                else:
                    index += 1
                if index < self.first_frame:
                    continue
                yield DecodedFrame(index=index, rgb=self.rgb_of(frame))
                done += 1
                if index >= self.last_frame:
                    return
        except av.error.FFmpegError as err:
            raise UnreadableMediaError(
                f"cannot decode '{path}': corrupt after {done} of {wanted} frames "
                f"(frames {self.first_frame}-{self.last_frame}; {err.strerror or err}); re-copy or re-export it"
            ) from err
        raise UnreadableMediaError(
            f"cannot decode '{path}': expected {wanted} frames ({self.first_frame}-{self.last_frame}), "
            f"decoded {done}; the file is truncated or corrupt, re-copy or re-export it"
        )

    def rgb_of(self, frame: av.VideoFrame) -> np.ndarray:
        """Frame -> R'G'B' array in this reader's colour standard and depth."""
        return frame_to_rgb(frame, self._colorspace, self._color_range, wide=self._wide)

    # --- image sequences ----------------------------------------------------------------

    def _sequence_frames(self) -> Iterator[DecodedFrame]:
        for index in range(self.first_frame, self.last_frame + 1):
            path = sequence_frame_path(self.info, index)
            if not path.is_file():
                raise UnreadableMediaError(
                    f"cannot read '{path}': frame {index} of the sequence is missing; render or restore it"
                )
            rgb = image_rgb(path, wide=self._wide)
            if rgb.shape[:2] != (self.info.height, self.info.width):
                raise UnreadableMediaError(
                    f"cannot read '{path}': {rgb.shape[1]}x{rgb.shape[0]} differs from the sequence's "
                    f"{self.info.width}x{self.info.height}; re-export the sequence at one size"
                )
            yield DecodedFrame(index=index, rgb=rgb)


def decode_image(path: Path) -> av.VideoFrame:
    """The one picture of a still image file, as decoded.

    Raises:
        UnreadableMediaError: not a readable image.
    """
    try:
        with av.open(str(path)) as container:
            return next(container.decode(video=0))
    except (av.error.FFmpegError, StopIteration) as err:
        raise UnreadableMediaError(f"cannot read image '{path}': corrupt or not an image; re-export it") from err


def image_rgb(path: Path, *, wide: bool) -> np.ndarray:
    """R'G'B' of a still image, decoded with its own tagged matrix and range (JPEG: BT.601 full range).

    OpenEXR files go through :func:`exr_rgb` (always uint16).

    Shape:
        -> [H, W, 3] uint8, or uint16 when ``wide`` (and for EXR)

    Raises:
        UnreadableMediaError: not a readable image.
    """
    if path.suffix.lower() == ".exr":
        return exr_rgb(path)
    frame = decode_image(path)
    colorspace = colour.colorspace_for(colour.colorspace_name(int(frame.colorspace)))
    color_range = colour.color_range_for(colour.color_range_name(int(frame.color_range)))
    return frame_to_rgb(frame, colorspace, color_range, wide=wide)


def frame_to_rgb(frame: av.VideoFrame, colorspace: str, color_range: str, *, wide: bool) -> np.ndarray:
    """R'G'B' array of a decoded frame.

    Args:
        frame: any pixel format FFmpeg decodes to.
        colorspace: Y'CbCr standard (key of ``colour.LUMA_COEFFICIENTS``); unused for RGB formats.
        color_range: ``"tv"`` or ``"pc"``; unused for RGB formats.
        wide: True for uint16 full-scale output, False for uint8.

    Shape:
        -> [H, W, 3] uint8 or uint16
    """
    fmt = frame.format
    if frame.format.name.startswith("yuvj"):
        color_range = "pc"
    if fmt.is_rgb or fmt.name in ("gray", "gray16le", "gray16be", "pal8"):
        return frame.reformat(format="rgb48le" if wide else "rgb24").to_ndarray()
    bits = max(c.bits for c in fmt.components)
    if not wide and bits <= 8:
        rgb = frame.reformat(
            format="rgb24",
            src_colorspace=colour.sws_colorspace(colorspace),
            src_color_range=colour.sws_color_range(color_range),
            dst_color_range="JPEG",
        )
        return rgb.to_ndarray()
    planes, bits = _yuv444_planes(frame, bits)
    rgb = colour.ycbcr_to_rgb(planes, colorspace=colorspace, color_range=color_range, bit_depth=bits)
    if wide:
        rgb *= np.float32(65535.0)
        rgb += np.float32(0.5)
        return rgb.astype(np.uint16)
    rgb *= np.float32(255.0)
    rgb += np.float32(0.5)
    return rgb.astype(np.uint8)


def _yuv444_planes(frame: av.VideoFrame, bits: int) -> tuple[np.ndarray, int]:
    """Y, Cb, Cr at full size as float32 code values, and their bit depth."""
    match = _PLANAR_YUV_RE.match(frame.format.name)
    native = match is not None and match.group(3) != "be"
    if not native:
        target = "yuv444p" if bits <= 8 else f"yuv444p{min(max(bits, 10), 16)}le"
        frame = frame.reformat(format=target)
        bits = 8 if bits <= 8 else min(max(bits, 10), 16)
    dtype = np.uint8 if bits <= 8 else np.uint16
    height, width = frame.height, frame.width
    out = np.empty((3, height, width), dtype=np.float32)
    for i, plane in enumerate(frame.planes[:3]):
        itemsize = np.dtype(dtype).itemsize
        data = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // itemsize)
        data = data[:, : plane.width]
        out[i] = data if i == 0 else colour.chroma_upsampled(data, height, width)
    return out, bits


def exr_rgb(path: object) -> np.ndarray:
    """R, G, B of an OpenEXR file clipped to 0..1, as uint16 full scale (display-referred).

    Shape:
        -> [H, W, 3] uint16
    """
    import OpenEXR

    try:
        channels = OpenEXR.File(str(path), separate_channels=True).channels()
        rgb = np.stack([channels[name].pixels for name in ("R", "G", "B")], axis=-1).astype(np.float32)
    except Exception as err:  # the binding raises bare RuntimeError/KeyError
        raise UnreadableMediaError(f"cannot read EXR '{path}': {err}; re-export it with R, G, B channels") from err
    np.nan_to_num(rgb, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(rgb, 0.0, 1.0, out=rgb)
    rgb *= np.float32(65535.0)
    rgb += np.float32(0.5)
    return rgb.astype(np.uint16)
