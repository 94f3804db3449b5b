"""Y'CbCr <-> R'G'B' by named standard and range (ITU-R BT.709, BT.601, BT.2020).

Follows ITU-R BT.709-6 / BT.601-7 / BT.2020-2 (non-constant luminance): the matrix comes
from the luma coefficients (Kr, Kb); "tv" (MPEG, limited) range puts 8-bit luma on 16..235
and chroma on 16..240 (scaled by 2^(n-8) for n bits); "pc" (JPEG, full) range uses 0..2^n-1.
Colour standards and ranges use FFmpeg's names (``bt709``, ``bt470bg``, ``smpte170m``,
``bt2020nc``; ``tv``, ``pc``). No transfer function is applied: values stay gamma-encoded.

8-bit decodes go through swscale (:func:`sws_colorspace`), which is exact to rounding at
8 bits; conversions at higher bit depths and every encode use the numpy functions here,
because swscale's >8-bit limited-range path is off by a gain of 255/256.
"""

from __future__ import annotations

import logging
from typing import Final

import numpy as np

from rvm_render.errors import UnsupportedFormatError

log = logging.getLogger(__name__)

__all__ = [
    "LUMA_COEFFICIENTS",
    "DEFAULT_COLORSPACE",
    "DEFAULT_COLOR_RANGE",
    "colorspace_name",
    "color_range_name",
    "colorspace_for",
    "color_range_for",
    "sws_colorspace",
    "sws_color_range",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "chroma_upsampled",
]

#: (Kr, Kb) per FFmpeg colour-space name (AVColorSpace names).
LUMA_COEFFICIENTS: Final[dict[str, tuple[float, float]]] = {
    "bt709": (0.2126, 0.0722),
    "bt470bg": (0.299, 0.114),
    "smpte170m": (0.299, 0.114),
    "fcc": (0.30, 0.11),
    "smpte240m": (0.212, 0.087),
    "bt2020nc": (0.2627, 0.0593),
    "bt2020c": (0.2627, 0.0593),
}
DEFAULT_COLORSPACE: Final = "bt709"
DEFAULT_COLOR_RANGE: Final = "tv"

# AVColorSpace / AVColorRange values -> FFmpeg names (av_color_space_name, av_color_range_name).
_COLORSPACE_NAMES: Final[dict[int, str]] = {
    0: "gbr", 1: "bt709", 2: "unknown", 4: "fcc", 5: "bt470bg", 6: "smpte170m",
    7: "smpte240m", 8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085",
    12: "chroma-derived-nc", 13: "chroma-derived-c", 14: "ictcp",
}  # fmt: skip
_COLOR_RANGE_NAMES: Final[dict[int, str]] = {0: "unknown", 1: "tv", 2: "pc"}

# swscale (SWS_CS_*) names as PyAV's Colorspace enum spells them.
_SWS_COLORSPACE: Final[dict[str, str]] = {
    "bt709": "ITU709",
    "bt470bg": "ITU601",
    "smpte170m": "SMPTE170M",
    "fcc": "FCC",
    "smpte240m": "SMPTE240M",
    "bt2020nc": "BT2020",
    "bt2020c": "BT2020",
}


def colorspace_name(value: int) -> str:
    """FFmpeg's name for an AVColorSpace value (``1`` -> ``"bt709"``)."""
    return _COLORSPACE_NAMES.get(int(value), "unknown")


def color_range_name(value: int) -> str:
    """FFmpeg's name for an AVColorRange value (``1`` -> ``"tv"``, ``2`` -> ``"pc"``)."""
    return _COLOR_RANGE_NAMES.get(int(value), "unknown")


def colorspace_for(tag: str | None, *, width: int = 0, height: int = 0) -> str:
    """The Y'CbCr standard to decode with: the stream's tag, else BT.709.

    Args:
        tag: FFmpeg colour-space name from the stream (``"unknown"``/``None`` when untagged).
        width, height: frame size, only used to log the fallback.

    Returns:
        A key of :data:`LUMA_COEFFICIENTS`.
    """
    if tag in LUMA_COEFFICIENTS:
        return tag  # type: ignore[return-value]
    if tag not in (None, "", "unknown", "unspecified", "reserved", "rgb", "gbr"):
        log.warning("colour space %r is not handled; decoding as BT.709", tag)
    return DEFAULT_COLORSPACE


def color_range_for(tag: str | None) -> str:
    """The range to decode with: ``"pc"`` when tagged full (pc/jpeg), else ``"tv"`` (limited)."""
    return "pc" if tag in ("pc", "jpeg", "full") else DEFAULT_COLOR_RANGE


def sws_colorspace(colorspace: str) -> str:
    """PyAV ``Colorspace`` name for an FFmpeg colour-space name (for ``reformat``)."""
    return _SWS_COLORSPACE[colorspace]


def sws_color_range(color_range: str) -> str:
    """PyAV ``ColorRange`` name (``"MPEG"``/``"JPEG"``) for ``"tv"``/``"pc"``."""
    return "JPEG" if color_range == "pc" else "MPEG"


def _coefficients(colorspace: str) -> tuple[float, float, float]:
    try:
        kr, kb = LUMA_COEFFICIENTS[colorspace]
    except KeyError:
        raise UnsupportedFormatError(
            f"colour space '{colorspace}' is not supported; use one of {sorted(LUMA_COEFFICIENTS)}"
        ) from None
    return kr, 1.0 - kr - kb, kb


def _scales(color_range: str, bit_depth: int) -> tuple[float, float, float, float]:
    """(luma offset, luma span, chroma span, chroma centre) in code values."""
    if color_range == "pc":
        top = float((1 << bit_depth) - 1)
        return 0.0, top, top, float(1 << (bit_depth - 1))
    unit = float(1 << (bit_depth - 8))
    return 16.0 * unit, 219.0 * unit, 224.0 * unit, 128.0 * unit


def rgb_to_ycbcr(
    rgb: np.ndarray, *, colorspace: str = "bt709", color_range: str = "tv", bit_depth: int = 10
) -> np.ndarray:
    """Rounded Y'CbCr code values (4:4:4) for R'G'B' in 0..1.

    Args:
        rgb: R'G'B' values, clipped to 0..1 first. Works plane by plane: an HWC view of planar
            ``[3, H, W]`` memory is about three times faster than interleaved HWC.
        colorspace: key of :data:`LUMA_COEFFICIENTS`.
        color_range: ``"tv"`` (limited) or ``"pc"`` (full).
        bit_depth: code-value bit depth (8..16).

    Returns:
        Planes Y, Cb, Cr as uint16 (uint8 when ``bit_depth == 8``).

    Shape:
        rgb: [H, W, 3] float -> [3, H, W]
    """
    kr, kg, kb = _coefficients(colorspace)
    y_off, y_span, c_span, c_mid = _scales(color_range, bit_depth)
    rgb = np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    matrix = (
        (kr * y_span, kg * y_span, kb * y_span, y_off),
        (-kr / (2 * (1 - kb)) * c_span, -kg / (2 * (1 - kb)) * c_span, 0.5 * c_span, c_mid),
        (0.5 * c_span, -kg / (2 * (1 - kr)) * c_span, -kb / (2 * (1 - kr)) * c_span, c_mid),
    )
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    top = float((1 << bit_depth) - 1)
    out = np.empty((3, *rgb.shape[:2]), dtype=dtype)
    for plane, (cr_, cg_, cb_, off) in enumerate(matrix):
        acc = r * np.float32(cr_)
        acc += g * np.float32(cg_)
        acc += b * np.float32(cb_)
        acc += np.float32(off)
        np.rint(acc, out=acc)
        np.clip(acc, 0.0, top, out=acc)
        out[plane] = acc
    return out


def ycbcr_to_rgb(
    planes: np.ndarray, *, colorspace: str = "bt709", color_range: str = "tv", bit_depth: int = 8
) -> np.ndarray:
    """R'G'B' in 0..1 (float32, clipped) from 4:4:4 Y'CbCr code values.

    Args:
        planes: Y, Cb, Cr code values (any integer or float dtype).
        colorspace: key of :data:`LUMA_COEFFICIENTS`.
        color_range: ``"tv"`` (limited) or ``"pc"`` (full).
        bit_depth: code-value bit depth of ``planes``.

    Returns:
        float32 R'G'B' in 0..1.

    Shape:
        planes: [3, H, W] -> [H, W, 3]
    """
    kr, kg, kb = _coefficients(colorspace)
    y_off, y_span, c_span, c_mid = _scales(color_range, bit_depth)
    y = (np.asarray(planes[0], dtype=np.float32) - np.float32(y_off)) * np.float32(1.0 / y_span)
    cb = (np.asarray(planes[1], dtype=np.float32) - np.float32(c_mid)) * np.float32(1.0 / c_span)
    cr = (np.asarray(planes[2], dtype=np.float32) - np.float32(c_mid)) * np.float32(1.0 / c_span)
    rgb = np.empty((*y.shape, 3), dtype=np.float32)
    rgb[..., 0] = y + np.float32(2 * (1 - kr)) * cr
    rgb[..., 2] = y + np.float32(2 * (1 - kb)) * cb
    rgb[..., 1] = (y - np.float32(kr) * rgb[..., 0] - np.float32(kb) * rgb[..., 2]) * np.float32(1 / kg)
    np.clip(rgb, 0.0, 1.0, out=rgb)
    return rgb


def chroma_upsampled(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """A subsampled chroma plane brought to full size (linear, MPEG-2/H.264 default siting).

    Horizontal samples are co-sited with even luma columns (left siting); vertical samples
    of 4:2:0 sit between luma rows (centre siting).

    Shape:
        plane: [h, w] with h in {H, ceil(H/2)}, w in {W, ceil(W/2)} -> [H, W] float32
    """
    out = np.asarray(plane, dtype=np.float32)
    if out.shape[1] != width:
        nxt = np.concatenate([out[:, 1:], out[:, -1:]], axis=1)
        wide = np.empty((out.shape[0], out.shape[1] * 2), dtype=np.float32)
        wide[:, 0::2] = out
        wide[:, 1::2] = (out + nxt) * np.float32(0.5)
        out = wide[:, :width]
    if out.shape[0] != height:
        prev = np.concatenate([out[:1], out[:-1]], axis=0)
        nxt = np.concatenate([out[1:], out[-1:]], axis=0)
        tall = np.empty((out.shape[0] * 2, out.shape[1]), dtype=np.float32)
        tall[0::2] = np.float32(0.25) * prev + np.float32(0.75) * out
        tall[1::2] = np.float32(0.75) * out + np.float32(0.25) * nxt
        out = tall[:height]
    return out
