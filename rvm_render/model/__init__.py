"""The Robust Video Matting network in pure torch: no files, devices or configuration.

Module names follow the official implementation (github.com/PeterL1n/RobustVideoMatting)
so its ``rvm_mobilenetv3.pth`` / ``rvm_resnet50.pth`` state_dicts load with ``strict=True``.
"""

from __future__ import annotations

from rvm_render.model.matting import REFINERS, VARIANTS, MattingNetwork, Refiner, Variant

__all__ = ["MattingNetwork", "Variant", "Refiner", "VARIANTS", "REFINERS"]
