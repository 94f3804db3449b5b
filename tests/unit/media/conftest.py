"""Real frames and mattes from the shared clips for the media tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rvm_render.media import MediaInfo, open_reader, probe


def matte_from_luma(rgb: np.ndarray, radius: int = 7) -> np.ndarray:
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


@pytest.fixture(scope="session")
def dog_info(clips_dir: Path) -> MediaInfo:
    return probe(clips_dir / "01_dog.mp4")


@pytest.fixture(scope="session")
def dog_frames(dog_info: MediaInfo) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """First 12 frames of 01_dog as (frame_index, fgr float32, pha float32)."""
    frames = []
    with open_reader(dog_info, 0, 11) as reader:
        for decoded in reader:
            fgr = decoded.rgb.astype(np.float32) / 255.0
            frames.append((decoded.index, fgr, matte_from_luma(fgr)))
    return frames
