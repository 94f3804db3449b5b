"""Engine: weights, recurrent state, device and precision around the pure-torch model.

``open_matter()`` is the usual entry point (find weights, build, put on a device); ``load_model()``
gives the bare official-layout network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rvm_render.lazy import lazy_attributes

if TYPE_CHECKING:
    from rvm_render.engine.fusion import fused_for_inference
    from rvm_render.engine.matter import (
        EngineOptions,
        MatteBatch,
        Matter,
        PlanningMatter,
        auto_downsample_ratio,
        auto_step_threads,
        load_model,
        open_matter,
        open_planning_matter,
        preferred_batch_frames,
    )
    from rvm_render.engine.state import RecurrentState
    from rvm_render.engine.tfjs import tfjs_to_state_dict
    from rvm_render.engine.weights import LoadedWeights, read_weights, resolve_weights_path

#: Imported on first use: importing a light module of the package loads none of these.
__getattr__ = lazy_attributes(__name__, {
    "fused_for_inference": "rvm_render.engine.fusion",
    "EngineOptions": "rvm_render.engine.matter",
    "MatteBatch": "rvm_render.engine.matter",
    "Matter": "rvm_render.engine.matter",
    "PlanningMatter": "rvm_render.engine.matter",
    "auto_downsample_ratio": "rvm_render.engine.matter",
    "auto_step_threads": "rvm_render.engine.matter",
    "load_model": "rvm_render.engine.matter",
    "open_matter": "rvm_render.engine.matter",
    "open_planning_matter": "rvm_render.engine.matter",
    "preferred_batch_frames": "rvm_render.engine.matter",
    "RecurrentState": "rvm_render.engine.state",
    "tfjs_to_state_dict": "rvm_render.engine.tfjs",
    "LoadedWeights": "rvm_render.engine.weights",
    "read_weights": "rvm_render.engine.weights",
    "resolve_weights_path": "rvm_render.engine.weights",
})

__all__ = [
    "EngineOptions",
    "Matter",
    "MatteBatch",
    "PlanningMatter",
    "RecurrentState",
    "LoadedWeights",
    "auto_downsample_ratio",
    "auto_step_threads",
    "fused_for_inference",
    "load_model",
    "open_matter",
    "open_planning_matter",
    "preferred_batch_frames",
    "read_weights",
    "resolve_weights_path",
    "tfjs_to_state_dict",
]
