"""Matte deliverables: one writer per output format behind :func:`open_writer`.

========== ============================= ==============================================
format      file                          content
========== ============================= ==============================================
prores4444 ``<stem>_matte.mov``           ProRes 4444 10-bit, straight fgr + alpha, audio
alpha      ``<stem>_alpha.mov``           ProRes 422 HQ grey matte (luma = alpha), audio
comp       ``<stem>_comp.mp4``            H.264 subject over a background, audio
exr        ``<stem>_matte.%06d.exr``      OpenEXR half RGBA (straight), ZIP
png        ``<stem>_matte.%06d.png``      RGBA PNG, 8 or 16 bit following the source
========== ============================= ==============================================

Sequence frames are numbered ``info.first_frame_number + frame_index``. Every writer encodes
under a temporary name and :mod:`rvm_render.media.commit` renames on ``close``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rvm_render.lazy import lazy_attributes

if TYPE_CHECKING:
    from rvm_render.media.writers.background import Background, is_colour, parse_background
    from rvm_render.media.writers.formats import OutputFormat, output_path
    from rvm_render.media.writers.opener import open_writer
    from rvm_render.media.writers.output import MatteWriter, WrittenOutput

#: Imported on first use: the formats and backgrounds load no encoder (no PyAV).
__getattr__ = lazy_attributes(__name__, {
    "Background": "rvm_render.media.writers.background",
    "parse_background": "rvm_render.media.writers.background",
    "is_colour": "rvm_render.media.writers.background",
    "OutputFormat": "rvm_render.media.writers.formats",
    "output_path": "rvm_render.media.writers.formats",
    "open_writer": "rvm_render.media.writers.opener",
    "MatteWriter": "rvm_render.media.writers.output",
    "WrittenOutput": "rvm_render.media.writers.output",
})

__all__ = [
    "OutputFormat",
    "Background",
    "parse_background",
    "is_colour",
    "MatteWriter",
    "WrittenOutput",
    "open_writer",
    "output_path",
]
