"""Lite R-ASPP segmentation head (Howard et al., "Searching for MobileNetV3", ICCV 2019).

As used by RVM: a 1x1 conv-BN-ReLU branch gated by a global-pooled 1x1 conv-sigmoid branch.
Module names ``aspp1``/``aspp2`` match the official RVM ``model/lraspp.py``.
"""

from __future__ import annotations

from torch import Tensor, nn

from rvm_render.model.time_axis import per_frame

__all__ = ["LRASPP"]


class LRASPP(nn.Module):
    """``aspp1(x) * aspp2(x)``.

    Shape:
        x: ``[B, C_in, H, W]`` or ``[B, T, C_in, H, W]``; returns ``C_out`` channels, same size.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.aspp1 = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.aspp2 = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward_single_frame(self, x: Tensor) -> Tensor:
        return self.aspp1(x) * self.aspp2(x)

    def forward(self, x: Tensor) -> Tensor:
        return per_frame(self.forward_single_frame, x)
