"""Colour standards: Y'CbCr <-> R'G'B' by named matrix and range, and the tags outputs carry.

Follows ITU-R BT.709-6 / BT.601-7 / BT.2020-2 (non-constant luminance): the matrix comes
from the luma coefficients (Kr, Kb); "tv" (MPEG, limited) range puts 8-bit luma on 16..235
and chroma on 16..240 (scaled by 2^(n-8) for n bits); "pc" (JPEG, full) range uses 0..2^n-1.
Colour standards and ranges use FFmpeg's names (``bt709``, ``bt470bg``, ``smpte170m``,
``bt2020nc``; ``tv``, ``pc``). No transfer function is applied: values stay gamma-encoded.

8-bit decodes go through swscale (:func:`sws_colorspace`), which is exact to rounding at
8 bits; conversions at higher bit depths and every encode use the numpy functions here,
because swscale's >8-bit limited-range path is off by a gain of 255/256.

Outputs keep the source's colour: :func:`output_colour_for` gives the primaries, transfer and
matrix a deliverable is encoded with and tagged as (ITU-T H.273 code points, FFmpeg's names),
and :func:`chromaticities_of` the CIE xy values OpenEXR's ``chromaticities`` attribute holds.
The network was trained on SDR BT.709 video; :func:`non_bt709_reason` says when a source is not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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
    "ycbcr_matrix",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "chroma_upsampled",
    "color_primaries_name",
    "color_trc_name",
    "OutputColour",
    "output_colour_for",
    "chromaticities_of",
    "primaries_of_chromaticities",
    "non_bt709_reason",
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
# AVColorPrimaries / AVColorTransferCharacteristic values -> FFmpeg names (H.273 code points).
_PRIMARIES_NAMES: Final[dict[int, str]] = {
    1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
    8: "film", 9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213",
}  # fmt: skip
_TRC_NAMES: Final[dict[int, str]] = {
    1: "bt709", 2: "unknown", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m",
    8: "linear", 9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
    14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}  # fmt: skip
#: CIE 1931 xy of red, green, blue and white per primaries (H.273 table 2), as OpenEXR orders them.
_CHROMATICITIES: Final[dict[str, tuple[float, ...]]] = {
    "bt709": (0.640, 0.330, 0.300, 0.600, 0.150, 0.060, 0.3127, 0.3290),
    "bt470m": (0.670, 0.330, 0.210, 0.710, 0.140, 0.080, 0.310, 0.316),
    "bt470bg": (0.640, 0.330, 0.290, 0.600, 0.150, 0.060, 0.3127, 0.3290),
    "smpte170m": (0.630, 0.340, 0.310, 0.595, 0.155, 0.070, 0.3127, 0.3290),
    "smpte240m": (0.630, 0.340, 0.310, 0.595, 0.155, 0.070, 0.3127, 0.3290),
    "film": (0.681, 0.319, 0.243, 0.692, 0.145, 0.049, 0.310, 0.316),
    "bt2020": (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290),
    "smpte428": (1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1 / 3, 1 / 3),
    "smpte431": (0.680, 0.320, 0.265, 0.690, 0.150, 0.060, 0.314, 0.351),
    "smpte432": (0.680, 0.320, 0.265, 0.690, 0.150, 0.060, 0.3127, 0.3290),
    "ebu3213": (0.630, 0.340, 0.295, 0.605, 0.155, 0.077, 0.3127, 0.3290),
}
#: Transfers of SDR video that RVM's BT.709 training material shares closely enough.
_SDR_TRANSFERS: Final = frozenset(
    {"bt709", "smpte170m", "gamma22", "gamma28", "iec61966-2-1", "bt2020-10", "bt2020-12"}
)
#: Primaries of (or within a hair of) BT.709 / sRGB.
_BT709_PRIMARIES: Final = frozenset({"bt709", "bt470bg", "smpte170m", "smpte240m", "ebu3213"})
_UNTAGGED: Final = frozenset({"unknown", "unspecified", "reserved", ""})

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


def color_primaries_name(value: int) -> str:
    """FFmpeg's name for an AVColorPrimaries value (``1`` -> ``"bt709"``, ``9`` -> ``"bt2020"``)."""
    return _PRIMARIES_NAMES.get(int(value), "unknown")


def color_trc_name(value: int) -> str:
    """FFmpeg's name for an AVColorTransferCharacteristic value (``16`` -> ``"smpte2084"``, PQ)."""
    return _TRC_NAMES.get(int(value), "unknown")


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


def ycbcr_matrix(colorspace: str, color_range: str, bit_depth: int) -> tuple[tuple[float, float, float, float], ...]:
    """Rows (R', G', B' weights, offset) giving Y', Cb, Cr code values (before rounding) from R'G'B' 0..1.

    The one definition of the encode matrix: :func:`rgb_to_ycbcr` applies it in numpy, the GPU
    data path (:mod:`rvm_render.pipeline.device_payloads`) in torch, in the same float32 order.
    """
    kr, kg, kb = _coefficients(colorspace)
    y_off, y_span, c_span, c_mid = _scales(color_range, bit_depth)
    return (
        (kr * y_span, kg * y_span, kb * y_span, y_off),
        (-kr / (2 * (1 - kb)) * c_span, -kg / (2 * (1 - kb)) * c_span, 0.5 * c_span, c_mid),
        (0.5 * c_span, -kg / (2 * (1 - kr)) * c_span, -kb / (2 * (1 - kr)) * c_span, c_mid),
    )


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
    rgb = np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    top = float((1 << bit_depth) - 1)
    out = np.empty((3, *rgb.shape[:2]), dtype=dtype)
    for plane, (cr_, cg_, cb_, off) in enumerate(ycbcr_matrix(colorspace, color_range, bit_depth)):
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


def _code_point(names: dict[int, str], name: str) -> int:
    return next(value for value, known in names.items() if known == name)


@dataclass(frozen=True, slots=True)
class OutputColour:
    """How a deliverable's picture is encoded and tagged: primaries, transfer and Y'CbCr matrix.

    ``matrix`` is a key of :data:`LUMA_COEFFICIENTS`; ``primaries`` and ``transfer`` are FFmpeg
    names. Values pass through the network unchanged in meaning (no conversion between
    standards), so an output is tagged with what its source was tagged with.
    """

    primaries: str = "bt709"
    transfer: str = "bt709"
    matrix: str = DEFAULT_COLORSPACE

    def codec_tags(self) -> dict[str, int]:
        """AVCodecContext fields (``color_primaries``, ``color_trc``, ``colorspace``) as H.273 values."""
        return {
            "color_primaries": _code_point(_PRIMARIES_NAMES, self.primaries),
            "color_trc": _code_point(_TRC_NAMES, self.transfer),
            "colorspace": _code_point(_COLORSPACE_NAMES, self.matrix),
        }


def output_colour_for(colorspace: str, color_primaries: str, color_trc: str) -> OutputColour:
    """The colour a source's deliverables carry: its own tags, BT.709 where it has none.

    Untagged sources are decoded as BT.709 (:func:`colorspace_for`), so their outputs say so.
    The matrix is the one the source was decoded with; an R'G'B' source (PNG, EXR, DPX)
    gets BT.2020's matrix when its primaries are BT.2020, else BT.709's.
    """
    primaries = color_primaries if color_primaries in _CHROMATICITIES else "bt709"
    transfer = color_trc if color_trc in _TRC_NAMES.values() and color_trc not in _UNTAGGED else "bt709"
    if colorspace in LUMA_COEFFICIENTS:
        matrix = colorspace
    else:
        matrix = "bt2020nc" if primaries == "bt2020" else DEFAULT_COLORSPACE
    return OutputColour(primaries=primaries, transfer=transfer, matrix=matrix)


def chromaticities_of(primaries: str) -> tuple[float, ...]:
    """OpenEXR ``chromaticities`` (red, green, blue, white xy) of FFmpeg-named primaries."""
    return _CHROMATICITIES[primaries]


def primaries_of_chromaticities(xy: tuple[float, ...], tolerance: float = 1e-3) -> str:
    """FFmpeg's name for the primaries an OpenEXR ``chromaticities`` attribute holds (``"unknown"``: none)."""
    for name, known in _CHROMATICITIES.items():
        if all(abs(a - b) <= tolerance for a, b in zip(xy, known, strict=True)):
            return name
    return "unknown"


def non_bt709_reason(color_primaries: str, color_trc: str) -> str | None:
    """Why a source is not SDR BT.709 material (e.g. ``"transfer smpte2084 (PQ)"``), or None.

    Untagged sources are taken as BT.709, as they are decoded.
    """
    reasons = []
    if color_primaries not in _UNTAGGED and color_primaries not in _BT709_PRIMARIES:
        reasons.append(f"primaries {color_primaries}")
    if color_trc not in _UNTAGGED and color_trc not in _SDR_TRANSFERS:
        label = {"smpte2084": " (PQ)", "arib-std-b67": " (HLG)"}.get(color_trc, "")
        reasons.append(f"transfer {color_trc}{label}")
    return ", ".join(reasons) or None
