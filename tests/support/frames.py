"""Realistic mattes from real frames, and raw plane access for decoded high-bit-depth video."""

from __future__ import annotations

import av
import numpy as np

__all__ = ["luma_matte", "planes_of"]


def luma_matte(rgb: np.ndarray, radius: int = 7) -> np.ndarray:
    """A realistic soft matte from the frame: box-blurred BT.709 luma stretched over 0..1.

    Gives solid 0 and 1 regions with smooth ramps between them, like a matting network's
    output (grain-free, soft edges a few pixels wide).

    Shape:
        rgb: [H, W, 3] float32 0..1 -> [H, W] float32 0..1
    """
    luma = (rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)).astype(np.float64)
    size = 2 * radius + 1
    for axis in (0, 1):
        padded = np.pad(luma, [(radius + 1, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        summed = np.cumsum(padded, axis=axis)
        upper = np.take(summed, range(size, summed.shape[axis]), axis=axis)
        lower = np.take(summed, range(0, summed.shape[axis] - size), axis=axis)
        luma = (upper - lower) / size
    return np.clip((luma - 0.3) * 3.0, 0.0, 1.0).astype(np.float32)


def planes_of(frame: av.VideoFrame) -> list[np.ndarray]:
    """The planes of a 16-bit-container frame (e.g. yuva444p10le) as int64 arrays, padding cut."""
    return [
        np.frombuffer(p, np.uint16).reshape(p.height, p.line_size // 2)[:, : p.width].astype(np.int64)
        for p in frame.planes
    ]
