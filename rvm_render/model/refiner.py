"""Refiners that upsample RVM's low-resolution output to the input size.

Both follow the official ``model/fast_guided_filter.py`` / ``model/deep_guided_filter.py``
(after Wu et al., "Fast End-to-End Trainable Guided Filter", CVPR 2018):

* ``FastGuidedFilterRefiner``: parameter-free guided filter, radius 1, eps 1e-5, guide =
  RGB + gray. The box filter is a zero-padded separable 3x3 mean (divisor 3 per axis, *not*
  renormalised at the border), exactly as the official PyTorch code.
* ``DeepGuidedFilterRefiner``: learned 1x1 convolutions predict ``A`` from the local
  statistics and the decoder's hidden features (``box_filter``, ``conv.N`` as official).

``A`` and ``b`` are upsampled bilinearly (``align_corners=False``) and applied to the
full-resolution guide: ``out = A * fine + b``.

Precision: the filter statistics (box means, covariance, variance), ``A``, ``b`` and their
application run in float32 whatever the network's dtype, and the result is returned in the
input's dtype. ``var = E[x^2] - E[x]^2`` with ``eps = 1e-5`` cancels catastrophically in half
precision (flat regions have variances far below fp16's resolution near 1): refined in fp16,
mattes of real frames had pixels off by up to 1.0. Only the Deep Guided Filter's learned 1x1
convolutions run in the network's dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["BoxFilter", "FastGuidedFilter", "FastGuidedFilterRefiner", "DeepGuidedFilterRefiner"]


def _with_gray(rgb: Tensor) -> Tensor:
    return torch.cat([rgb, rgb.mean(1, keepdim=True)], dim=1)


class BoxFilter(nn.Module):
    """Separable ``(2r+1)``-tap mean with zero padding: horizontal pass, then vertical."""

    def __init__(self, r: int) -> None:
        super().__init__()
        self.r = r

    def forward(self, x: Tensor) -> Tensor:
        # The official code runs a depthwise conv2d with weights 1/(2r+1) and zero padding.
        # Written as a sum of shifted views (x0*w, then += x_i*w in tap order) it gives the same
        # float32 result on CPU and is far faster than a grouped conv there.
        size = 2 * self.r + 1
        weight = 1 / size
        height, width = x.shape[-2:]
        padded = F.pad(x, (self.r, self.r))
        x = padded[..., :width] * weight
        for i in range(1, size):
            x = x.add_(padded[..., i : i + width], alpha=weight)
        padded = F.pad(x, (0, 0, self.r, self.r))
        out = padded[..., :height, :] * weight
        for i in range(1, size):
            out = out.add_(padded[..., i : i + height, :], alpha=weight)
        return out


class FastGuidedFilter(nn.Module):
    """Guided filter fitted at low resolution and applied at high resolution."""

    def __init__(self, r: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.r = r
        self.eps = eps
        self.boxfilter = BoxFilter(r)

    def forward(self, lr_x: Tensor, lr_y: Tensor, hr_x: Tensor) -> Tensor:
        a, b = self.coefficients(lr_x, lr_y, hr_x.shape[2:])
        return torch.addcmul(b, a, hr_x.float()).to(hr_x.dtype)

    def coefficients(self, lr_x: Tensor, lr_y: Tensor, size: torch.Size) -> tuple[Tensor, Tensor]:
        """``A`` and ``b`` (float32) fitted at low resolution, upsampled to ``size``: ``out = A * hr_x + b``."""
        lr_x, lr_y = lr_x.float(), lr_y.float()
        mean_x = self.boxfilter(lr_x)
        mean_y = self.boxfilter(lr_y)
        cov_xy = self.boxfilter(lr_x * lr_y) - mean_x * mean_y
        var_x = self.boxfilter(lr_x * lr_x) - mean_x * mean_x
        a = cov_xy / (var_x + self.eps)
        b = mean_y - a * mean_x
        a = F.interpolate(a, size, mode="bilinear", align_corners=False)
        b = F.interpolate(b, size, mode="bilinear", align_corners=False)
        return a, b


class FastGuidedFilterRefiner(nn.Module):
    """Upsample ``fgr``/``pha`` with a fast guided filter guided by RGB + gray (no parameters).

    Shape:
        fine_src: ``[B, (T,) 3, H, W]``; base_src ``[.., 3, h, w]``; base_fgr ``[.., 3, h, w]``;
        base_pha ``[.., 1, h, w]``. Returns ``fgr [.., 3, H, W]`` and ``pha [.., 1, H, W]``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.guided_filter = FastGuidedFilter(1)

    def forward_single_frame(
        self, fine_src: Tensor, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor
    ) -> tuple[Tensor, Tensor]:
        # Each output channel is guided by its own guide channel, so fgr uses the RGB guide and
        # pha the gray one directly: the 4-channel full-resolution guide is never built.
        a, b = self.guided_filter.coefficients(
            _with_gray(base_src.float()), torch.cat([base_fgr, base_pha], dim=1), fine_src.shape[2:]
        )
        fine = fine_src.float()  # no copy in float32
        fgr = torch.addcmul(b[:, :3], a[:, :3], fine)
        pha = torch.addcmul(b[:, 3:], a[:, 3:], fine.mean(1, keepdim=True))
        return fgr.to(fine_src.dtype), pha.to(fine_src.dtype)

    def forward(
        self, fine_src: Tensor, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor, base_hid: Tensor
    ) -> tuple[Tensor, Tensor]:
        if fine_src.ndim == 5:
            batch, frames = fine_src.shape[:2]
            fgr, pha = self.forward_single_frame(
                fine_src.flatten(0, 1), base_src.flatten(0, 1), base_fgr.flatten(0, 1), base_pha.flatten(0, 1)
            )
            return fgr.unflatten(0, (batch, frames)), pha.unflatten(0, (batch, frames))
        return self.forward_single_frame(fine_src, base_src, base_fgr, base_pha)


class DeepGuidedFilterRefiner(nn.Module):
    """Guided filter whose ``A`` is predicted by 1x1 convs from local statistics + hidden features.

    Shape: as :class:`FastGuidedFilterRefiner`, plus ``base_hid [.., hid_channels, h, w]``.
    """

    def __init__(self, hid_channels: int = 16) -> None:
        super().__init__()
        self.box_filter = nn.Conv2d(4, 4, kernel_size=3, padding=1, bias=False, groups=4)
        with torch.no_grad():
            self.box_filter.weight.fill_(1 / 9)
        self.conv = nn.Sequential(
            nn.Conv2d(4 * 2 + hid_channels, hid_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(hid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(hid_channels, hid_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(hid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(hid_channels, 4, kernel_size=1, bias=True),
        )

    def forward_single_frame(
        self, fine_src: Tensor, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor, base_hid: Tensor
    ) -> tuple[Tensor, Tensor]:
        fine_x = _with_gray(fine_src.float())
        base_x = _with_gray(base_src.float())
        base_y = torch.cat([base_fgr, base_pha], dim=1).float()
        mean_x = self._box(base_x)
        mean_y = self._box(base_y)
        cov_xy = self._box(base_x * base_y) - mean_x * mean_y
        var_x = self._box(base_x * base_x) - mean_x * mean_x
        learned = self.conv[0].weight.dtype
        a = self.conv(torch.cat([cov_xy, var_x, base_hid.float()], dim=1).to(learned)).float()
        b = mean_y - a * mean_x
        size = fine_src.shape[2:]
        a = F.interpolate(a, size, mode="bilinear", align_corners=False)
        b = F.interpolate(b, size, mode="bilinear", align_corners=False)
        fgr, pha = (a * fine_x + b).to(fine_src.dtype).split([3, 1], dim=1)
        return fgr, pha

    def _box(self, x: Tensor) -> Tensor:
        """The official 3x3 box filter (its fixed 1/9 weights) in float32."""
        weight = self.box_filter.weight.float()
        return F.conv2d(x, weight, padding=1, groups=self.box_filter.groups)

    def forward(
        self, fine_src: Tensor, base_src: Tensor, base_fgr: Tensor, base_pha: Tensor, base_hid: Tensor
    ) -> tuple[Tensor, Tensor]:
        if fine_src.ndim == 5:
            batch, frames = fine_src.shape[:2]
            fgr, pha = self.forward_single_frame(
                fine_src.flatten(0, 1),
                base_src.flatten(0, 1),
                base_fgr.flatten(0, 1),
                base_pha.flatten(0, 1),
                base_hid.flatten(0, 1),
            )
            return fgr.unflatten(0, (batch, frames)), pha.unflatten(0, (batch, frames))
        return self.forward_single_frame(fine_src, base_src, base_fgr, base_pha, base_hid)
