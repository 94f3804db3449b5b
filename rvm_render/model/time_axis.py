"""Time-axis handling shared by the per-frame blocks of the network.

RVM modules accept either single frames ``[B, C, H, W]`` or clips ``[B, T, C, H, W]``.
Everything except the ConvGRU is per frame, so clips are folded into the batch axis,
processed, and unfolded again.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

__all__ = ["per_frame"]


def per_frame(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Apply ``fn`` (a per-frame map) to a frame batch or to every frame of a clip batch.

    Shape:
        x: ``[B, C, H, W]`` or ``[B, T, C, H, W]``; the result keeps the same leading axes.
    """
    if x.ndim == 5:
        batch, frames = x.shape[:2]
        return fn(x.flatten(0, 1)).unflatten(0, (batch, frames))
    return fn(x)
