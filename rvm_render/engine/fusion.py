"""Inference-only rewrites of a MattingNetwork that keep its outputs (up to float rounding).

``fused_for_inference`` folds every eval-mode BatchNorm into the convolution before it
(``w' = w * gamma / sqrt(var + eps)``, ``b' = (b - mean) * gamma / sqrt(var + eps) + beta``,
computed in float64) and replaces the BatchNorm with ``nn.Identity``. The result no longer
has the official state_dict layout; it is only for running.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["fused_for_inference", "folded_conv"]


def folded_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new conv equal to ``bn(conv(x))`` for an eval-mode BatchNorm."""
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
    ).to(device=conv.weight.device, dtype=conv.weight.dtype)
    assert bn.running_mean is not None and bn.running_var is not None
    with torch.no_grad():
        scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
        fused.weight.copy_(conv.weight.double() * scale.view(-1, 1, 1, 1))
        fused.bias.copy_((bias - bn.running_mean.double()) * scale + bn.bias.double())
    return fused


def _fold_children(module: nn.Module) -> None:
    children = dict(module.named_children())
    names = list(children)
    pairs: list[tuple[str, str]] = []
    if isinstance(module, nn.Sequential):
        pairs += [(a, b) for a, b in zip(names, names[1:])]
    pairs += [(f"conv{suffix}", f"bn{suffix}") for suffix in ("", "1", "2", "3")]
    for conv_name, bn_name in pairs:
        conv, bn = children.get(conv_name), children.get(bn_name)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            setattr(module, conv_name, folded_conv(conv, bn))
            setattr(module, bn_name, nn.Identity())
            children[conv_name], children[bn_name] = getattr(module, conv_name), getattr(module, bn_name)
    for child in module.children():
        _fold_children(child)


def fused_for_inference(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) with every conv -> BatchNorm pair folded into one conv.

    Convs followed by a BatchNorm in a ``nn.Sequential``, and ``convN``/``bnN`` attribute pairs
    (ResNet), are folded. The input model is left unchanged.
    """
    fused = copy.deepcopy(model).eval()
    _fold_children(fused)
    return fused
