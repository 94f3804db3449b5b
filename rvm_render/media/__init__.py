"""Media in and out: probe clips, decode R'G'B' frames, write matte deliverables (PyAV, OpenEXR, numpy)."""

from __future__ import annotations

from rvm_render.media.probe import MediaInfo, probe
from rvm_render.media.reader import DecodedFrame, FrameReader, open_reader

__all__ = ["MediaInfo", "probe", "DecodedFrame", "FrameReader", "open_reader"]
