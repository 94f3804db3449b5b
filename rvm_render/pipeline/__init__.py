"""One clip, one pass: decode -> infer -> encode, overlapped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rvm_render.lazy import lazy_attributes

if TYPE_CHECKING:
    from rvm_render.pipeline.progress import ProgressCallback, ProgressEvent
    from rvm_render.pipeline.render import (
        RenderRequest,
        RenderResult,
        RenderSettings,
        clip_stem,
        output_stem,
        render_clip,
    )

#: Imported on first use: importing a light module of the package loads none of these.
__getattr__ = lazy_attributes(__name__, {
    "ProgressCallback": "rvm_render.pipeline.progress",
    "ProgressEvent": "rvm_render.pipeline.progress",
    "RenderRequest": "rvm_render.pipeline.render",
    "RenderResult": "rvm_render.pipeline.render",
    "RenderSettings": "rvm_render.pipeline.render",
    "clip_stem": "rvm_render.pipeline.render",
    "output_stem": "rvm_render.pipeline.render",
    "render_clip": "rvm_render.pipeline.render",
})

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
