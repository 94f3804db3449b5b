"""Editorial timelines in, mattes back: OpenTimelineIO conform of an edit (``rvm-render timeline``)."""

from rvm_render.otio.conform import ConformOptions, ConformResult, conform_timeline, plan_timeline
from rvm_render.otio.matte_track import RenderedRange, timeline_with_matte_tracks
from rvm_render.otio.reading import read_timeline, write_timeline
from rvm_render.otio.requests import ClipUse, ConformPlan, MediaRange, SkippedClip, conform_plan

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
