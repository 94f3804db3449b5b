"""Engine: weights, recurrent state, device and precision around the pure-torch model.

``open_matter()`` is the usual entry point (find weights, build, put on a device); ``load_model()``
gives the bare official-layout network.
"""

from __future__ import annotations

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
