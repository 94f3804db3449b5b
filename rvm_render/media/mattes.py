"""Mattes read back: the alpha plane of a movie or image, a grey matte's luma, an EXR's ``A``, as float32 0..1.

The reader (:mod:`rvm_render.media.reader`) keeps R'G'B' for rendering; this reads what a matte
is carried in, for scoring (``rvm-render eval``):

- a movie: its alpha plane when the pixel format has one (ProRes 4444 ``yuva444p12le``, PNG or
  QuickTime RLE in a ``.mov``), on the full code range (``code / (2^bits - 1)``); otherwise the
  luma of a grey matte (the ``alpha`` deliverable, an H.264 or FFV1 grey movie), by the
  stream's range (limited unless tagged full: ``(Y' - 16·2^(n-8)) / (219·2^(n-8))``), refused
  when more than 5 % of its chroma is off neutral (a picture, not a matte). Grey pixel formats
  count as full range.
- an image (PNG, TIFF, DPX, JPEG): the alpha channel, else the grey value (R, G and B must agree).
- an OpenEXR image: channel ``A``, else the only channel, else ``Y``, else R = G = B; NaN reads
  as 0, and values are clipped to 0..1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import av
import numpy as np

from rvm_render.errors import UnreadableMediaError, UnsupportedFormatError
from rvm_render.media import colour
from rvm_render.media.reader import decode_image

__all__ = ["movie_mattes", "image_matte"]

#: A grey matte may have this share of pixels off grey (chroma, or R-G / B-G, beyond :data:`GREY_CODES`):
#: codec noise; a picture has far more (the shared clips' frames: 25-80 %).
GREY_TOLERANCE: Final = 0.05
#: How far off grey a pixel may be before it counts against :data:`GREY_TOLERANCE`, in 8-bit codes.
GREY_CODES: Final = 3


def movie_mattes(path: Path, frames: int) -> Iterator[np.ndarray]:
    """The matte of each of a movie's first ``frames`` frames (module doc).

    Shape:
        -> each [H, W] float32 0..1

    Raises:
        UnreadableMediaError: corrupt, or fewer frames than ``frames``.
        UnsupportedFormatError: the pictures carry no matte.
    """
    done = 0
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                yield _frame_alpha(frame, path)
                done += 1
                if done == frames:
                    return
    except av.error.FFmpegError as err:
        raise UnreadableMediaError(
            f"cannot decode '{path}': corrupt after {done} of {frames} frames ({err}); re-copy or re-export it"
        ) from err
    raise UnreadableMediaError(
        f"cannot decode '{path}': expected {frames} frames, decoded {done}; the file is truncated or corrupt"
    )


def image_matte(path: Path) -> np.ndarray:
    """A still's or one sequence frame's matte (module doc).

    Shape:
        -> [H, W] float32 0..1

    Raises:
        UnreadableMediaError: not a readable image.
        UnsupportedFormatError: the picture carries no matte.
    """
    if path.suffix.lower() == ".exr":
        return _exr_alpha(path)
    return _frame_alpha(decode_image(path), path)


def _plane(frame: av.VideoFrame, index: int, bits: int) -> np.ndarray:
    """One plane of a planar little-endian frame as its integer code values, padding cut."""
    plane = frame.planes[index]
    dtype = np.uint8 if bits <= 8 else np.dtype("<u2")
    data = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // np.dtype(dtype).itemsize)
    return data[:, : plane.width]


def _frame_alpha(frame: av.VideoFrame, path: Path) -> np.ndarray:
    """The matte a decoded picture carries: its alpha, the grey value, or a grey matte's luma (module doc)."""
    fmt = frame.format
    native = fmt.is_planar and not fmt.is_big_endian and all(c.bits <= 16 for c in fmt.components)
    alpha_parts = [c for c in fmt.components if c.is_alpha]
    if alpha_parts:
        part = alpha_parts[0]
        if native:
            return _plane(frame, part.plane, part.bits).astype(np.float32) / np.float32((1 << part.bits) - 1)
        wide = part.bits > 8  # reformatting 8-bit alpha to 16 bits is not exact in swscale
        rgba = frame.reformat(format="rgba64le" if wide else "rgba").to_ndarray()
        return rgba[..., 3].astype(np.float32) / np.float32(65535 if wide else 255)
    if fmt.name.startswith("gray") or fmt.name in ("monow", "monob"):
        if fmt.name != "gray":
            frame = frame.reformat(format="gray16le")
        bits = 8 if fmt.name == "gray" else 16
        return _plane(frame, 0, bits).astype(np.float32) / np.float32((1 << bits) - 1)
    if fmt.is_rgb or fmt.name == "pal8":
        rgb = frame.reformat(format="rgb48le").to_ndarray().astype(np.float32) / np.float32(65535)
        return _grey_of_rgb(rgb, path)
    return _luma_matte(frame, path)


def _grey_of_rgb(rgb: np.ndarray, path: Path) -> np.ndarray:
    limit = np.float32(GREY_CODES / 255)
    off_grey = (np.abs(rgb[..., 0] - rgb[..., 1]) > limit) | (np.abs(rgb[..., 2] - rgb[..., 1]) > limit)
    if off_grey.mean() > GREY_TOLERANCE:
        raise UnsupportedFormatError(
            f"'{path}' has no alpha channel and is not grey (R, G, B differ); pass the matte: "
            "an image with alpha, a grey matte, or an rvm-render output"
        )
    return np.ascontiguousarray(rgb[..., 1])


def _luma_matte(frame: av.VideoFrame, path: Path) -> np.ndarray:
    """A grey matte's luma, by the frame's range; refused when the chroma is not neutral."""
    fmt = frame.format
    bits = max(c.bits for c in fmt.components)
    if not (fmt.is_planar and not fmt.is_big_endian and len(frame.planes) >= 3 and bits <= 16):
        frame = frame.reformat(format="yuv444p" if bits <= 8 else "yuv444p16le")
        bits = 8 if bits <= 8 else 16
    color_range = "pc" if fmt.name.startswith("yuvj") else colour.color_range_for(
        colour.color_range_name(int(frame.color_range))
    )
    unit = float(1 << (bits - 8))
    if color_range == "pc":
        y_offset, y_span = 0.0, float((1 << bits) - 1)
    else:
        y_offset, y_span = 16.0 * unit, 219.0 * unit
    centre = 128.0 * unit
    off_grey = max(float((np.abs(_plane(frame, i, bits).astype(np.float32) - centre) > GREY_CODES * unit).mean())
                   for i in (1, 2))
    if off_grey > GREY_TOLERANCE:
        raise UnsupportedFormatError(
            f"'{path}' has no alpha plane and is not a grey matte (its chroma is not neutral); pass the matte: "
            "a movie with alpha (ProRes 4444), a grey matte movie, or an rvm-render output"
        )
    luma = (_plane(frame, 0, bits).astype(np.float32) - np.float32(y_offset)) / np.float32(y_span)
    return np.clip(luma, 0.0, 1.0, out=luma)


def _exr_alpha(path: Path) -> np.ndarray:
    import OpenEXR

    try:
        channels = OpenEXR.File(str(path), separate_channels=True).channels()
    except Exception as err:  # the binding raises bare RuntimeError
        raise UnreadableMediaError(f"cannot read EXR '{path}': {err}; re-export it") from err
    names = sorted(channels)
    if "A" in channels:
        values = channels["A"].pixels
    elif len(names) == 1:
        values = channels[names[0]].pixels
    elif "Y" in channels:
        values = channels["Y"].pixels
    elif {"R", "G", "B"} <= set(names):
        rgb = np.stack([channels[c].pixels for c in ("R", "G", "B")], axis=-1).astype(np.float32)
        values = _grey_of_rgb(np.clip(np.nan_to_num(rgb, nan=0.0), 0.0, 1.0), path)
    else:
        raise UnsupportedFormatError(
            f"EXR '{path}' has no matte channel (channels: {', '.join(names)}); write the matte as channel A"
        )
    alpha = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(alpha, 0.0, 1.0, out=alpha)
