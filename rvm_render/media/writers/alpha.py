"""Grey matte movie (``<stem>_alpha.mov``): alpha as a picture, for NLE track-matte keys.

ProRes 422 HQ (prores_ks profile hq, ``yuv422p10le``), the source's colour tags, limited range: luma
carries the matte (``Y' = 64 + round(pha * 876)``, so alpha 0 decodes to black and 1 to
white) and chroma is neutral (512). Premiere's Track Matte Key (luma), Resolve's and Final
Cut's luma mattes, and Avid all take ProRes 422 HQ; it stays 10-bit, so soft edges do not
band the way 8-bit H.264 would. Audio is copied and the timecode kept, so the matte lines
up with the source on a timeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rvm_render.errors import UnsupportedFormatError
from rvm_render.media.probe import MediaInfo
from rvm_render.media.writers.container import ContainerWriter
from rvm_render.media.writers.output import OutputFormat

__all__ = ["AlphaMatteWriter", "matte_luma"]

#: ProRes quantiser 1 (finest), as ``ffmpeg -q:v 1``: the quality prores_ks's rate control
#: reaches on 720p/1080p material anyway, at about a quarter of its CPU time (no per-slice
#: quantiser search); frames may exceed Apple's nominal data rate on very detailed plates.
QUANTISER = 1
PIX_FMT = "yuv422p10le"


def matte_luma(pha: np.ndarray) -> np.ndarray:
    """10-bit limited-range luma code values for a matte: ``64 + round(pha * 876)`` (uint16)."""
    codes = np.clip(np.asarray(pha, dtype=np.float32), 0.0, 1.0) * np.float32(876.0)
    np.rint(codes, out=codes)
    codes += np.float32(64.0)
    return codes.astype(np.uint16)


class AlphaMatteWriter(ContainerWriter):
    """Writes ``<stem>_alpha.mov``: ProRes 422 HQ, grey picture = matte."""

    format = OutputFormat.ALPHA

    def __init__(self, final_path: Path, info: MediaInfo, *, overwrite: bool = False, audio: bool = True) -> None:
        if info.width % 2:
            raise UnsupportedFormatError(
                f"cannot write '{final_path}': ProRes 422 needs an even width, '{info.path}' is {info.width} wide; "
                "use the exr or prores4444 output"
            )
        super().__init__(
            final_path,
            info,
            overwrite=overwrite,
            codec="prores_ks",
            pix_fmt=PIX_FMT,
            options={"profile": "hq", "vendor": "apl0"},
            fixed_quantiser=QUANTISER,
            copy_audio=audio,
        )
        self._chroma = np.full((info.height, info.width // 2), 512, dtype=np.uint16)

    def planes(self, fgr: np.ndarray, pha: np.ndarray) -> list[np.ndarray]:
        """Luma = the matte (:func:`matte_luma`), neutral chroma."""
        return [matte_luma(pha), self._chroma, self._chroma]

    def write_converted(self, frame_index: int, payload: Any) -> None:
        """Encode source frame ``frame_index`` from its luma converted elsewhere.

        Shape:
            payload: [H, W] uint16, :func:`matte_luma` of the matte
        """
        super().write_converted(frame_index, [payload, self._chroma, self._chroma])
