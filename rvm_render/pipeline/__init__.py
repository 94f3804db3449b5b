"""One clip, one pass: decode -> infer -> encode, overlapped."""

from rvm_render.pipeline.progress import ProgressCallback, ProgressEvent
from rvm_render.pipeline.render import (
    RenderRequest,
    RenderResult,
    RenderSettings,
    clip_stem,
    output_stem,
    render_clip,
)

__all__ = [
    "ProgressCallback",
    "ProgressEvent",
    "RenderRequest",
    "RenderResult",
    "RenderSettings",
    "clip_stem",
    "output_stem",
    "render_clip",
]
