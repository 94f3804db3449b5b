"""Refiners: the box filter equals the official zero-padded depthwise conv."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from rvm_render.model.refiner import BoxFilter, DeepGuidedFilterRefiner, FastGuidedFilterRefiner


def _official_box_filter(x: torch.Tensor, r: int) -> torch.Tensor:
    """The official formulation: separable depthwise conv2d, weights 1/(2r+1), zero padding."""
    size, channels = 2 * r + 1, x.shape[1]
    kernel_x = torch.full((channels, 1, 1, size), 1 / size)
    kernel_y = torch.full((channels, 1, size, 1), 1 / size)
    x = F.conv2d(x, kernel_x, padding=(0, r), groups=channels)
    return F.conv2d(x, kernel_y, padding=(r, 0), groups=channels)


def test_box_filter_equals_official_conv() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 4, 37, 53) * torch.rand(2, 4, 37, 53)
    for r in (1, 2):
        assert torch.allclose(BoxFilter(r)(x), _official_box_filter(x, r), rtol=0, atol=1e-7)


def test_box_filter_is_not_renormalised_at_the_border() -> None:
    ones = torch.ones(1, 1, 5, 5)
    out = BoxFilter(1)(ones)
    assert torch.allclose(out[0, 0, 2, 2], torch.tensor(1.0))
    assert torch.allclose(out[0, 0, 0, 0], torch.tensor(4 / 9))


def test_fast_guided_filter_keeps_a_flat_matte_flat() -> None:
    base_src = torch.rand(1, 3, 20, 30)
    fine_src = F.interpolate(base_src, size=(40, 60), mode="bilinear", align_corners=False)
    fgr = torch.full((1, 3, 20, 30), 0.25)
    pha = torch.full((1, 1, 20, 30), 0.75)
    out_fgr, out_pha = FastGuidedFilterRefiner()(fine_src, base_src, fgr, pha, torch.empty(0))
    assert out_fgr.shape == (1, 3, 40, 60) and out_pha.shape == (1, 1, 40, 60)
    # Away from the zero-padded border the guided filter reproduces a constant exactly (b = mean).
    assert torch.allclose(out_pha[..., 4:-4, 4:-4], torch.tensor(0.75), atol=1e-4)


def test_refiners_accept_clips() -> None:
    fine = torch.rand(1, 2, 3, 16, 24)
    base = torch.rand(1, 2, 3, 8, 12)
    fgr, pha, hid = torch.rand(1, 2, 3, 8, 12), torch.rand(1, 2, 1, 8, 12), torch.rand(1, 2, 16, 8, 12)
    for refiner in (FastGuidedFilterRefiner(), DeepGuidedFilterRefiner().eval()):
        with torch.inference_mode():
            clip_fgr, clip_pha = refiner(fine, base, fgr, pha, hid)
            frame_fgr, frame_pha = refiner(fine[:, 1], base[:, 1], fgr[:, 1], pha[:, 1], hid[:, 1])
        assert clip_pha.shape == (1, 2, 1, 16, 24)
        assert torch.allclose(clip_fgr[:, 1], frame_fgr, atol=1e-6)
        assert torch.allclose(clip_pha[:, 1], frame_pha, atol=1e-6)
