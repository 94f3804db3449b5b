"""OpenEXR sequence (``<stem>_matte.%06d.exr``): half-float RGBA frames for compositing.

Channels ``R``, ``G``, ``B``, ``A`` as HALF, ZIP compression (lossless, 16 scanlines a
block: fast to read in Nuke, Resolve, Fusion), scanline image, ``chromaticities`` of the
source's primaries (BT.709 when untagged). R, G, B are the straight
(unpremultiplied) foreground exactly as the model gives it (display-referred R'G'B', not
linearised); A is the matte. Set the Read node to "unpremultiplied" (Nuke: uncheck
"premultiplied") or premultiply downstream. Written with the OpenEXR library, never FFmpeg.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenEXR

from rvm_render.media.colour import chromaticities_of
from rvm_render.media.commit import output_error
from rvm_render.media.probe import MediaInfo
from rvm_render.media.writers.output import OutputFormat, colour_of
from rvm_render.media.writers.sequence import SequenceWriter

__all__ = ["ExrWriter", "COMPRESSION", "CHANNELS"]

COMPRESSION = OpenEXR.ZIP_COMPRESSION
CHANNELS = ("R", "G", "B", "A")


class ExrWriter(SequenceWriter):
    """Writes ``<stem>_matte.%06d.exr``: half RGBA, straight fgr + alpha, ZIP."""

    format = OutputFormat.EXR

    def __init__(self, final_path: Path, info: MediaInfo, *, overwrite: bool = False) -> None:
        super().__init__(final_path, info, overwrite=overwrite)
        self._header = {
            "compression": COMPRESSION,
            "type": OpenEXR.scanlineimage,
            "pixelAspectRatio": float(info.pixel_aspect),
            "chromaticities": chromaticities_of(colour_of(info).primaries),
        }

    def prepare(self, fgr: np.ndarray, pha: np.ndarray) -> np.ndarray:
        """Planes R, G, B, A as half floats (round to nearest even).

        Shape:
            fgr: [H, W, 3], pha: [H, W] float32 -> [4, H, W] float16
        """
        rgba = np.empty((4, *pha.shape), dtype=np.float16)
        for channel in range(3):
            rgba[channel] = fgr[..., channel]
        rgba[3] = pha
        return rgba

    def encode_file(self, path: Path, payload: np.ndarray) -> None:
        channels = dict(zip(CHANNELS, payload, strict=True))
        try:
            OpenEXR.File(dict(self._header), channels, num_threads=1).write(str(path))
        except RuntimeError as err:  # the binding reports I/O failures as RuntimeError
            raise output_error(path, err) from err
