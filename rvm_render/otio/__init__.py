"""Editorial timelines in, mattes back: OpenTimelineIO conform of an edit (``rvm-render timeline``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rvm_render.lazy import lazy_attributes

if TYPE_CHECKING:
    from rvm_render.otio.conform import ConformOptions, ConformResult, conform_timeline, plan_timeline
    from rvm_render.otio.matte_track import RenderedRange, timeline_with_matte_tracks
    from rvm_render.otio.reading import read_timeline, write_timeline
    from rvm_render.otio.requests import ClipUse, ConformPlan, MediaRange, SkippedClip, conform_plan

#: Imported on first use: importing a light module of the package loads none of these.
__getattr__ = lazy_attributes(__name__, {
    "ConformOptions": "rvm_render.otio.conform",
    "ConformResult": "rvm_render.otio.conform",
    "conform_timeline": "rvm_render.otio.conform",
    "plan_timeline": "rvm_render.otio.conform",
    "RenderedRange": "rvm_render.otio.matte_track",
    "timeline_with_matte_tracks": "rvm_render.otio.matte_track",
    "read_timeline": "rvm_render.otio.reading",
    "write_timeline": "rvm_render.otio.reading",
    "ClipUse": "rvm_render.otio.requests",
    "ConformPlan": "rvm_render.otio.requests",
    "MediaRange": "rvm_render.otio.requests",
    "SkippedClip": "rvm_render.otio.requests",
    "conform_plan": "rvm_render.otio.requests",
})

__all__ = [
    "ClipUse",
    "ConformOptions",
    "ConformPlan",
    "ConformResult",
    "MediaRange",
    "RenderedRange",
    "SkippedClip",
    "conform_plan",
    "conform_timeline",
    "plan_timeline",
    "read_timeline",
    "timeline_with_matte_tracks",
    "write_timeline",
]
