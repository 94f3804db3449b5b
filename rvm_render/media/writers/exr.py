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

__all__ = ["ExrWriter", "COMPRESSION"]

COMPRESSION = OpenEXR.ZIP_COMPRESSION


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

    def prepare(self, fgr: np.ndarray, pha: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "R": fgr[..., 0].astype(np.float16),
            "G": fgr[..., 1].astype(np.float16),
            "B": fgr[..., 2].astype(np.float16),
            "A": np.asarray(pha).astype(np.float16),
        }

    def encode_file(self, path: Path, payload: dict[str, np.ndarray]) -> None:
        try:
            OpenEXR.File(dict(self._header), payload, num_threads=1).write(str(path))
        except RuntimeError as err:  # the binding reports I/O failures as RuntimeError
            raise output_error(path, err) from err
