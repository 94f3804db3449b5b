"""ProRes 4444 with alpha (``<stem>_matte.mov``): the compositing deliverable for NLEs and Nuke.

Apple ProRes 4444 (prores_ks, profile 4444, vendor ``apl0``), 10-bit Y'CbCrA 4:4:4
(``yuva444p10le``), tagged with the source's primaries / transfer / matrix (BT.709 when it
has none), limited range. Colour is the
straight (unpremultiplied) foreground, alpha is the matte on the full 10-bit scale
(``round(pha * 1023)``); Y'CbCr comes from :func:`rvm_render.media.colour.rgb_to_ycbcr`.
Audio is copied from the source and the source timecode is kept (a tmcd track).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rvm_render.media import colour
from rvm_render.media.probe import MediaInfo
from rvm_render.media.writers.container import ContainerWriter
from rvm_render.media.writers.output import OutputFormat

__all__ = ["ProRes4444Writer", "alpha_codes"]

#: ProRes quantiser 1 (finest), as ``ffmpeg -q:v 1``: the quality prores_ks's rate control
#: reaches on 720p/1080p material anyway, at about a quarter of its CPU time (no per-slice
#: quantiser search); frames may exceed Apple's nominal data rate on very detailed plates.
QUANTISER = 1
PIX_FMT = "yuva444p10le"


def alpha_codes(pha: np.ndarray, bit_depth: int = 10) -> np.ndarray:
    """Alpha 0..1 as full-range code values ``round(pha * (2^bits - 1))`` (uint16)."""
    top = np.float32((1 << bit_depth) - 1)
    codes = np.clip(np.asarray(pha, dtype=np.float32), 0.0, 1.0) * top
    np.rint(codes, out=codes)
    return codes.astype(np.uint16)


class ProRes4444Writer(ContainerWriter):
    """Writes ``<stem>_matte.mov``: ProRes 4444, straight RGB = fgr, alpha = pha."""

    format = OutputFormat.PRORES4444

    def __init__(self, final_path: Path, info: MediaInfo, *, overwrite: bool = False, audio: bool = True) -> None:
        super().__init__(
            final_path,
            info,
            overwrite=overwrite,
            codec="prores_ks",
            pix_fmt=PIX_FMT,
            options={"profile": "4444", "vendor": "apl0", "alpha_bits": "16"},
            fixed_quantiser=QUANTISER,
            copy_audio=audio,
        )

    def planes(self, fgr: np.ndarray, pha: np.ndarray) -> list[np.ndarray]:
        """Y', Cb, Cr (10-bit limited range, the output matrix) and alpha (10-bit full scale)."""
        ycbcr = colour.rgb_to_ycbcr(fgr, colorspace=self.colour.matrix, color_range="tv", bit_depth=10)
        return [ycbcr[0], ycbcr[1], ycbcr[2], alpha_codes(pha)]
