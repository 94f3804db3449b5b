"""fused_for_inference: same outputs, no BatchNorm left, original untouched."""

from __future__ import annotations

import pytest
import torch

from rvm_render.engine.fusion import fused_for_inference
from rvm_render.model import MattingNetwork


def _with_random_statistics(model: MattingNetwork) -> MattingNetwork:
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize(
    ("variant", "refiner"), [("mobilenetv3", "deep_guided_filter"), ("resnet50", "fast_guided_filter")]
)
def test_fused_model_matches(variant: str, refiner: str) -> None:
    model = _with_random_statistics(MattingNetwork(variant, refiner))
    fused = fused_for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    src = torch.rand(1, 3, 48, 64)
    with torch.inference_mode():
        expected = model(src, downsample_ratio=0.5)
        actual = fused(src, downsample_ratio=0.5)
    for a, b in zip(actual, expected):
        assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()
