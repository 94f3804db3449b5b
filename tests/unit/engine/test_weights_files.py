"""pth_to_state_dict: variant and refiner detection, key and shape checks (in memory)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rvm_render.engine.weights import LoadedWeights, network_for_weights, pth_to_state_dict
from rvm_render.errors import WeightsError
from rvm_render.model import MattingNetwork

PATH = Path("weights.pth")


@pytest.mark.parametrize("refiner", ["deep_guided_filter", "fast_guided_filter"])
def test_detects_mobilenetv3_and_refiner(refiner: str) -> None:
    state = MattingNetwork("mobilenetv3", refiner).state_dict()
    _, variant, detected = pth_to_state_dict(state, PATH)
    assert (variant, detected) == ("mobilenetv3", refiner)


def test_missing_num_batches_tracked_is_filled() -> None:
    state = {
        k: v
        for k, v in MattingNetwork("mobilenetv3", "fast_guided_filter").state_dict().items()
        if "num_batches" not in k
    }
    full, _, _ = pth_to_state_dict(state, PATH)
    MattingNetwork("mobilenetv3", "fast_guided_filter").load_state_dict(full, strict=True)


def test_missing_key_is_named() -> None:
    state = MattingNetwork("mobilenetv3", "fast_guided_filter").state_dict()
    del state["decoder.decode2.gru.hh.0.bias"]
    with pytest.raises(WeightsError, match="decode2.gru.hh.0.bias"):
        pth_to_state_dict(state, PATH)


def test_wrong_shape_is_named() -> None:
    state = MattingNetwork("mobilenetv3", "fast_guided_filter").state_dict()
    state["project_mat.conv.bias"] = torch.zeros(5)
    with pytest.raises(WeightsError, match=r"project_mat.conv.bias has shape \[5\]"):
        pth_to_state_dict(state, PATH)


@pytest.mark.parametrize("checkpoint", [[1, 2], {"a": 1}, {"decoder.x": torch.zeros(1)}])
def test_not_rvm(checkpoint: object) -> None:
    with pytest.raises(WeightsError, match="weights.pth"):
        pth_to_state_dict(checkpoint, PATH)


def test_fast_refiner_can_replace_deep() -> None:
    state = MattingNetwork("mobilenetv3", "deep_guided_filter").state_dict()
    loaded = LoadedWeights(PATH, "0" * 64, "mobilenetv3", "deep_guided_filter", state)
    model = network_for_weights(loaded, refiner="fast_guided_filter")
    assert model.refiner_name == "fast_guided_filter" and not model.training
