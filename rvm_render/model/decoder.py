"""Recurrent decoder of RVM (Lin et al., WACV 2022, Sec. 3.1), pure torch.

A ConvGRU on half the channels at each of the 1/16, 1/8, 1/4 and 1/2 scales carries the
temporal state ``r4``, ``r3``, ``r2``, ``r1``. Module names (``decode4``..``decode0``, ``gru.ih``,
``gru.hh``, ``conv.N``) match the official ``model/decoder.py``. Every block accepts frames
``[B, C, H, W]`` or clips ``[B, T, C, H, W]``; only the ConvGRU walks the time axis.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rvm_render.model.time_axis import per_frame

__all__ = [
    "ConvGRU",
    "AvgPool",
    "BottleneckBlock",
    "UpsamplingBlock",
    "OutputBlock",
    "Projection",
    "RecurrentDecoder",
]


def _channel_axis(x: Tensor) -> int:
    return 2 if x.ndim == 5 else 1


def _cropped_to(x: Tensor, like: Tensor) -> Tensor:
    """``x [B, C, H', W']`` cropped to the height and width of ``like`` (no-op when equal).

    Skipping the equal case keeps a copying ``Slice`` out of exported fixed-size graphs.
    """
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return x[:, :, : like.size(2), : like.size(3)]


class ConvGRU(nn.Module):
    """Convolutional GRU: gates ``r, z = sigmoid(ih([x, h]))``, candidate ``c = tanh(hh([x, r*h]))``.

    Shape:
        x: ``[B, C, H, W]`` or ``[B, T, C, H, W]``; h: ``[B, C, H, W]`` or None (zeros).
        Returns the output (same shape as ``x``) and the last hidden state ``[B, C, H, W]``.
    """

    def __init__(self, channels: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.ih = nn.Sequential(nn.Conv2d(channels * 2, channels * 2, kernel_size, padding=padding), nn.Sigmoid())
        self.hh = nn.Sequential(nn.Conv2d(channels * 2, channels, kernel_size, padding=padding), nn.Tanh())

    def forward_single_frame(self, x: Tensor, h: Tensor) -> Tensor:
        r, z = self.ih(torch.cat([x, h], dim=1)).split(self.channels, dim=1)
        c = self.hh(torch.cat([x, r * h], dim=1))
        return (1 - z) * h + z * c

    def forward(self, x: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
        if h is None:
            h = x.new_zeros((x.size(0), x.size(-3), x.size(-2), x.size(-1)))
        if x.ndim == 5:
            outputs = []
            for xt in x.unbind(dim=1):
                h = self.forward_single_frame(xt, h)
                outputs.append(h)
            return torch.stack(outputs, dim=1), h
        h = self.forward_single_frame(x, h)
        return h, h


class AvgPool(nn.Module):
    """The source image at 1/2, 1/4 and 1/8 scale (2x2 mean pooling, ceil mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.avgpool = nn.AvgPool2d(2, 2, count_include_pad=False, ceil_mode=True)

    def forward(self, s0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        s1 = per_frame(self.avgpool, s0)
        s2 = per_frame(self.avgpool, s1)
        s3 = per_frame(self.avgpool, s2)
        return s1, s2, s3


class BottleneckBlock(nn.Module):
    """1/16 scale: ConvGRU on the second half of the LR-ASPP channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.gru = ConvGRU(channels // 2)

    def forward(self, x: Tensor, r: Tensor | None) -> tuple[Tensor, Tensor]:
        axis = _channel_axis(x)
        a, b = x.split(self.channels // 2, dim=axis)
        b, r = self.gru(b, r)
        return torch.cat([a, b], dim=axis), r


class UpsamplingBlock(nn.Module):
    """Upsample x2, crop to the skip size, concat [x, feature, source], conv-BN-ReLU, ConvGRU."""

    def __init__(self, in_channels: int, skip_channels: int, src_channels: int, out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels + skip_channels + src_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.gru = ConvGRU(out_channels // 2)

    def _fuse(self, x: Tensor, f: Tensor, s: Tensor) -> Tensor:
        x = _cropped_to(self.upsample(x), s)
        return self.conv(torch.cat([x, f, s], dim=1))

    def forward(self, x: Tensor, f: Tensor, s: Tensor, r: Tensor | None) -> tuple[Tensor, Tensor]:
        if x.ndim == 5:
            batch, frames = s.shape[:2]
            x = self._fuse(x.flatten(0, 1), f.flatten(0, 1), s.flatten(0, 1)).unflatten(0, (batch, frames))
        else:
            x = self._fuse(x, f, s)
        axis = _channel_axis(x)
        a, b = x.split(self.out_channels // 2, dim=axis)
        b, r = self.gru(b, r)
        return torch.cat([a, b], dim=axis), r


class OutputBlock(nn.Module):
    """Full scale: upsample x2, crop, concat the source, two conv-BN-ReLU layers."""

    def __init__(self, in_channels: int, src_channels: int, out_channels: int) -> None:
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels + src_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def _fuse(self, x: Tensor, s: Tensor) -> Tensor:
        x = _cropped_to(self.upsample(x), s)
        return self.conv(torch.cat([x, s], dim=1))

    def forward(self, x: Tensor, s: Tensor) -> Tensor:
        if x.ndim == 5:
            batch, frames = s.shape[:2]
            return self._fuse(x.flatten(0, 1), s.flatten(0, 1)).unflatten(0, (batch, frames))
        return self._fuse(x, s)


class Projection(nn.Module):
    """1x1 convolution to the output channels (``project_mat``: 3 fgr residual + 1 alpha)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return per_frame(self.conv, x)


class RecurrentDecoder(nn.Module):
    """Decode the encoder features with ConvGRUs at 1/16..1/2 scale into full-res hidden features.

    Args:
        feature_channels: Channels of ``f1..f4`` (f4 after LR-ASPP).
        decoder_channels: Output channels of ``decode3``, ``decode2``, ``decode1``, ``decode0``.

    Shape:
        s0: ``[B, (T,) 3, H, W]`` the (downsampled) source; f1..f4 at 1/2..1/16.
        Returns ``hid`` (``decoder_channels[3]`` channels at full size) and ``r1..r4``.
    """

    def __init__(self, feature_channels: list[int], decoder_channels: list[int]) -> None:
        super().__init__()
        self.avgpool = AvgPool()
        self.decode4 = BottleneckBlock(feature_channels[3])
        self.decode3 = UpsamplingBlock(feature_channels[3], feature_channels[2], 3, decoder_channels[0])
        self.decode2 = UpsamplingBlock(decoder_channels[0], feature_channels[1], 3, decoder_channels[1])
        self.decode1 = UpsamplingBlock(decoder_channels[1], feature_channels[0], 3, decoder_channels[2])
        self.decode0 = OutputBlock(decoder_channels[2], 3, decoder_channels[3])

    def forward(
        self,
        s0: Tensor,
        f1: Tensor,
        f2: Tensor,
        f3: Tensor,
        f4: Tensor,
        r1: Tensor | None,
        r2: Tensor | None,
        r3: Tensor | None,
        r4: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        s1, s2, s3 = self.avgpool(s0)
        x4, r4 = self.decode4(f4, r4)
        x3, r3 = self.decode3(x4, f3, s3, r3)
        x2, r2 = self.decode2(x3, f2, s2, r2)
        x1, r1 = self.decode1(x2, f1, s1, r1)
        x0 = self.decode0(x1, s0)
        return x0, r1, r2, r3, r4
