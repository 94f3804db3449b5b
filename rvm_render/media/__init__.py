"""Media in and out: probe clips, decode R'G'B' frames, write matte deliverables (PyAV, OpenEXR, numpy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rvm_render.lazy import lazy_attributes

if TYPE_CHECKING:
    from rvm_render.media.probe import MediaInfo
    from rvm_render.media.reader import DecodedFrame, FrameReader, open_reader

#: Imported on first use: importing a light module of the package loads none of these. ``probe`` is
#: also a submodule's name, so it is imported from there: ``from rvm_render.media.probe import probe``.
__getattr__ = lazy_attributes(__name__, {
    "MediaInfo": "rvm_render.media.probe",
    "DecodedFrame": "rvm_render.media.reader",
    "FrameReader": "rvm_render.media.reader",
    "open_reader": "rvm_render.media.reader",
})

__all__ = ["MediaInfo", "DecodedFrame", "FrameReader", "open_reader"]
