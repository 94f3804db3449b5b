"""rvm_render: Robust Video Matting render node for post-production.

The top-level names are imported lazily so that light clients (editor integrations using
``rvm_render.api.client``) never pay for importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from rvm_render.errors import RvmRenderError

__version__ = "0.1.0"

__all__ = ["RvmRenderError", "__version__", "load_model", "render_clip"]

_LAZY = {
    "load_model": "rvm_render.engine",
    "render_clip": "rvm_render.pipeline",
}

if TYPE_CHECKING:
    from rvm_render.engine import load_model
    from rvm_render.pipeline import render_clip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rvm_render' has no attribute {name!r}")
