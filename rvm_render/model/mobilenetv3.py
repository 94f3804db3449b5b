"""MobileNetV3-Large encoder of RVM (Lin et al., WACV 2022), pure torch.

Follows torchvision's ``MobileNetV3`` as subclassed by the official RVM code
(PeterL1n/RobustVideoMatting ``model/mobilenetv3.py``): the same module tree, so the
official ``rvm_mobilenetv3.pth`` state_dict loads with ``strict=True``
(``backbone.features.N.block.M.{0,1}``, squeeze-excitation ``fc1``/``fc2``). The last stage
is dilated (stride 1, dilation 2), so the four features come at 1/2, 1/4, 1/8 and 1/16 of
the input. ImageNet normalisation happens inside, as in the official encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = [
    "BlockConfig",
    "ConvNormActivation",
    "SqueezeExcitation",
    "InvertedResidual",
    "MobileNetV3LargeEncoder",
    "LARGE_DILATED_BLOCKS",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_EPS = 0.001
BN_MOMENTUM = 0.01


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to a multiple of ``divisor`` without dropping more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True, slots=True)
class BlockConfig:
    """One inverted-residual block: channels, depthwise kernel, SE, activation, stride, dilation."""

    in_channels: int
    kernel_size: int
    expanded_channels: int
    out_channels: int
    use_se: bool
    hardswish: bool
    stride: int
    dilation: int


# MobileNetV3-Large as configured by RVM: the C4 stage uses dilation 2 instead of stride 2.
LARGE_DILATED_BLOCKS: tuple[BlockConfig, ...] = (
    BlockConfig(16, 3, 16, 16, False, False, 1, 1),
    BlockConfig(16, 3, 64, 24, False, False, 2, 1),  # C1
    BlockConfig(24, 3, 72, 24, False, False, 1, 1),
    BlockConfig(24, 5, 72, 40, True, False, 2, 1),  # C2
    BlockConfig(40, 5, 120, 40, True, False, 1, 1),
    BlockConfig(40, 5, 120, 40, True, False, 1, 1),
    BlockConfig(40, 3, 240, 80, False, True, 2, 1),  # C3
    BlockConfig(80, 3, 200, 80, False, True, 1, 1),
    BlockConfig(80, 3, 184, 80, False, True, 1, 1),
    BlockConfig(80, 3, 184, 80, False, True, 1, 1),
    BlockConfig(80, 3, 480, 112, True, True, 1, 1),
    BlockConfig(112, 3, 672, 112, True, True, 1, 1),
    BlockConfig(112, 5, 672, 160, True, True, 2, 2),  # C4
    BlockConfig(160, 5, 960, 160, True, True, 1, 2),
    BlockConfig(160, 5, 960, 160, True, True, 1, 2),
)


class ConvNormActivation(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> optional activation; torchvision's layout (0, 1, 2)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        activation: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        padding = (kernel_size - 1) // 2 * dilation
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM),
        ]
        if activation is not None:
            layers.append(activation(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Channel attention: global pool -> fc1 -> ReLU -> fc2 -> hard sigmoid -> scale."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class InvertedResidual(nn.Module):
    """MobileNetV3 block: [expand 1x1] -> depthwise kxk -> [SE] -> project 1x1 (+ skip)."""

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        activation: type[nn.Module] = nn.Hardswish if config.hardswish else nn.ReLU
        self.use_res_connect = config.stride == 1 and config.in_channels == config.out_channels
        stride = 1 if config.dilation > 1 else config.stride
        layers: list[nn.Module] = []
        if config.expanded_channels != config.in_channels:
            layers.append(
                ConvNormActivation(config.in_channels, config.expanded_channels, 1, activation=activation)
            )
        layers.append(
            ConvNormActivation(
                config.expanded_channels,
                config.expanded_channels,
                config.kernel_size,
                stride=stride,
                dilation=config.dilation,
                groups=config.expanded_channels,
                activation=activation,
            )
        )
        if config.use_se:
            squeeze = _make_divisible(config.expanded_channels // 4, 8)
            layers.append(SqueezeExcitation(config.expanded_channels, squeeze))
        layers.append(
            ConvNormActivation(config.expanded_channels, config.out_channels, 1, activation=None)
        )
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        if self.use_res_connect:
            out = out + x
        return out


class MobileNetV3LargeEncoder(nn.Module):
    """MobileNetV3-Large feature extractor with a dilated last stage.

    Shape:
        x: ``[B, 3, H, W]`` or ``[B, T, 3, H, W]`` RGB 0..1.
        Returns ``[f1, f2, f3, f4]`` with 16, 24, 40, 960 channels at 1/2, 1/4, 1/8, 1/16.
    """

    feature_channels = (16, 24, 40, 960)

    def __init__(self) -> None:
        super().__init__()
        blocks = LARGE_DILATED_BLOCKS
        last_channels = 6 * blocks[-1].out_channels
        self.features = nn.Sequential(
            ConvNormActivation(3, blocks[0].in_channels, 3, stride=2, activation=nn.Hardswish),
            *(InvertedResidual(config) for config in blocks),
            ConvNormActivation(blocks[-1].out_channels, last_channels, 1, activation=nn.Hardswish),
        )
        # Not part of the state_dict (as in the official code, which uses fixed constants).
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward_single_frame(self, x: Tensor) -> list[Tensor]:
        x = (x - self.mean) / self.std
        features = self.features
        x = features[1](features[0](x))
        f1 = x
        x = features[3](features[2](x))
        f2 = x
        x = features[6](features[5](features[4](x)))
        f3 = x
        for index in range(7, len(features)):
            x = features[index](x)
        return [f1, f2, f3, x]

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.ndim == 5:
            batch, frames = x.shape[:2]
            features = self.forward_single_frame(x.flatten(0, 1))
            return [f.unflatten(0, (batch, frames)) for f in features]
        return self.forward_single_frame(x)

