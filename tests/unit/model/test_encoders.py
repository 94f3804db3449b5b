"""Encoders: official state_dict layout and the 1/2..1/16 feature contract."""

from __future__ import annotations

import pytest
import torch

from rvm_render.model.mobilenetv3 import MobileNetV3LargeEncoder
from rvm_render.model.resnet import ResNet50Encoder


@pytest.mark.parametrize("encoder_type", [MobileNetV3LargeEncoder, ResNet50Encoder])
def test_features_come_at_half_to_sixteenth(encoder_type: type[torch.nn.Module]) -> None:
    encoder = encoder_type().eval()
    height, width = 70, 100  # not multiples of 16: sizes round up like a stride-2 conv
    with torch.inference_mode():
        features = encoder(torch.rand(2, 3, height, width))
    sizes = [(height, width)]
    for _ in range(4):
        sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
    assert [tuple(f.shape[-2:]) for f in features] == sizes[1:]
    assert [f.shape[1] for f in features] == list(encoder.feature_channels)


def test_clip_input_equals_frames_folded_into_batch() -> None:
    encoder = MobileNetV3LargeEncoder().eval()
    clip = torch.rand(2, 3, 3, 32, 48)
    with torch.inference_mode():
        per_clip = encoder(clip)
        per_batch = encoder(clip.flatten(0, 1))
    for a, b in zip(per_clip, per_batch):
        assert torch.allclose(a.flatten(0, 1), b, atol=1e-6)


def test_mobilenetv3_uses_torchvision_names_and_dilated_last_stage() -> None:
    encoder = MobileNetV3LargeEncoder()
    keys = set(encoder.state_dict())
    assert {"features.0.0.weight", "features.0.1.running_var", "features.16.0.weight"} <= keys
    assert {"features.4.block.2.fc1.weight", "features.4.block.2.fc2.bias"} <= keys
    assert not any(k.startswith(("mean", "std")) for k in keys)  # constants, not weights
    for index in (13, 14, 15):
        depthwise = encoder.features[index].block[1][0]
        assert depthwise.stride == (1, 1) and depthwise.dilation == (2, 2) and depthwise.groups > 1
    assert encoder.features[1].block[0][1].eps == 0.001


def test_resnet50_uses_torchvision_names_and_dilated_layer4() -> None:
    encoder = ResNet50Encoder()
    keys = set(encoder.state_dict())
    assert {"conv1.weight", "bn1.weight", "layer1.0.downsample.0.weight", "layer4.2.bn3.running_mean"} <= keys
    assert not any(k.startswith(("fc.", "avgpool")) for k in keys)
    assert encoder.layer4[0].conv2.stride == (1, 1)
    assert [block.conv2.dilation for block in encoder.layer4] == [(1, 1), (2, 2), (2, 2)]
