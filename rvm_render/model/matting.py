"""MattingNetwork: the Robust Video Matting model (Lin et al., WACV 2022), pure torch.

encoder (MobileNetV3-Large or ResNet-50) -> LR-ASPP -> recurrent decoder -> projection ->
refiner (only when the input was downsampled). Module names match the official
``model/model.py`` so official ``.pth`` state_dicts load with ``strict=True``.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn
from torch.nn import functional as F

from rvm_render.model.decoder import Projection, RecurrentDecoder
from rvm_render.model.lraspp import LRASPP
from rvm_render.model.mobilenetv3 import MobileNetV3LargeEncoder
from rvm_render.model.refiner import DeepGuidedFilterRefiner, FastGuidedFilterRefiner
from rvm_render.model.resnet import ResNet50Encoder

__all__ = ["MattingNetwork", "Variant", "Refiner", "VARIANTS", "REFINERS", "downsampled"]

Variant = Literal["mobilenetv3", "resnet50"]
Refiner = Literal["deep_guided_filter", "fast_guided_filter"]
VARIANTS: tuple[str, ...] = ("mobilenetv3", "resnet50")
REFINERS: tuple[str, ...] = ("deep_guided_filter", "fast_guided_filter")


def downsampled(src: Tensor, downsample_ratio: float) -> Tensor:
    """``src`` resized by ``downsample_ratio`` (bilinear, ``align_corners=False``), as official.

    The output size is ``floor(size * ratio)`` and the sampling grid uses the ratio itself
    (``recompute_scale_factor=False``).
    """

    def resize(x: Tensor) -> Tensor:
        return F.interpolate(
            x, scale_factor=downsample_ratio, mode="bilinear", align_corners=False, recompute_scale_factor=False
        )

    if src.ndim == 5:
        batch, frames = src.shape[:2]
        return resize(src.flatten(0, 1)).unflatten(0, (batch, frames))
    return resize(src)


class MattingNetwork(nn.Module):
    """Robust Video Matting network.

    Args:
        variant: Encoder, ``"mobilenetv3"`` or ``"resnet50"``.
        refiner: ``"deep_guided_filter"`` or ``"fast_guided_filter"``.

    Raises:
        ValueError: Unknown variant or refiner.
    """

    def __init__(self, variant: str = "mobilenetv3", refiner: str = "deep_guided_filter") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
        if refiner not in REFINERS:
            raise ValueError(f"unknown refiner {refiner!r}; expected one of {', '.join(REFINERS)}")
        self.variant = variant
        self.refiner_name = refiner
        self.backbone: nn.Module
        if variant == "mobilenetv3":
            self.backbone = MobileNetV3LargeEncoder()
            self.aspp = LRASPP(960, 128)
            self.decoder = RecurrentDecoder([16, 24, 40, 128], [80, 40, 32, 16])
        else:
            self.backbone = ResNet50Encoder()
            self.aspp = LRASPP(2048, 256)
            self.decoder = RecurrentDecoder([64, 256, 512, 256], [128, 64, 32, 16])
        self.project_mat = Projection(16, 4)
        self.project_seg = Projection(16, 1)
        self.refiner: nn.Module
        if refiner == "deep_guided_filter":
            self.refiner = DeepGuidedFilterRefiner()
        else:
            self.refiner = FastGuidedFilterRefiner()

    def forward(
        self,
        src: Tensor,
        r1: Tensor | None = None,
        r2: Tensor | None = None,
        r3: Tensor | None = None,
        r4: Tensor | None = None,
        downsample_ratio: float = 1.0,
        segmentation_pass: bool = False,
    ) -> list[Tensor]:
        """Matte a batch of frames or clips, carrying the recurrent state.

        Args:
            src: RGB 0..1.
            r1, r2, r3, r4: Recurrent state from the previous call, or None on the first frame.
            downsample_ratio: The network runs on ``src`` resized by this ratio; the refiner
                brings the result back to full size. 1 skips both.
            segmentation_pass: Return the segmentation logits instead of fgr/pha.

        Returns:
            ``[fgr, pha, r1, r2, r3, r4]`` (or ``[seg, r1, r2, r3, r4]``). ``fgr`` and ``pha``
            have ``src``'s dtype: a half-precision network may be given float32 frames, which
            then only its input is rounded to half, and the refiner guides by the exact frames.

        Shape:
            src: ``[B, 3, H, W]`` or ``[B, T, 3, H, W]`` RGB 0..1.
            fgr: ``[B, (T,) 3, H, W]`` 0..1; pha: ``[B, (T,) 1, H, W]`` 0..1.
            r1..r4: ``[B, C, h, w]`` with C = 16, 20, 40, 64 (mobilenetv3) at 1/2..1/16 of the
            downsampled size.
        """
        src_sm = downsampled(src, downsample_ratio) if downsample_ratio != 1 else src
        network_src = src_sm.to(self.project_mat.conv.weight.dtype)
        features = self.features(network_src)
        if segmentation_pass:
            hid, r1, r2, r3, r4 = self.decoder(network_src, *features, r1, r2, r3, r4)
            return [self.project_seg(hid), r1, r2, r3, r4]
        fgr_residual, pha, hid, r1, r2, r3, r4 = self.recurrent(network_src, *features, r1, r2, r3, r4)
        fgr, pha = self.full_res(src, src_sm, fgr_residual, pha, hid)
        return [fgr, pha, r1, r2, r3, r4]

    def features(self, src_sm: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Encoder and LR-ASPP on the downsampled source: ``f1..f4`` (no state; frames are independent)."""
        f1, f2, f3, f4 = self.backbone(src_sm)
        return f1, f2, f3, self.aspp(f4)

    def recurrent(
        self,
        src_sm: Tensor,
        f1: Tensor,
        f2: Tensor,
        f3: Tensor,
        f4: Tensor,
        r1: Tensor | None,
        r2: Tensor | None,
        r3: Tensor | None,
        r4: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Recurrent decoder and projection on :meth:`features`: ``fgr_residual, pha, hid, r1..r4`` (unclamped)."""
        hid, r1, r2, r3, r4 = self.decoder(src_sm, f1, f2, f3, f4, r1, r2, r3, r4)
        fgr_residual, pha = self.project_mat(hid).split([3, 1], dim=-3)
        return fgr_residual, pha, hid, r1, r2, r3, r4

    def full_res(
        self, src: Tensor, src_sm: Tensor, fgr_residual: Tensor, pha: Tensor, hid: Tensor
    ) -> tuple[Tensor, Tensor]:
        """:meth:`recurrent` outputs refined to ``src``'s size: clamped ``fgr, pha`` in ``src``'s dtype."""
        if src_sm.shape[-2:] != src.shape[-2:]:
            fgr_residual, pha = self.refiner(src, src_sm, fgr_residual, pha, hid)
        fgr = (fgr_residual.to(src.dtype) + src).clamp_(0.0, 1.0)
        return fgr, pha.to(src.dtype).clamp(0.0, 1.0)
