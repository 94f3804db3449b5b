"""Real frames and mattes from the shared clips for the media tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rvm_render.media import MediaInfo, open_reader
from rvm_render.media.probe import probe
from support.frames import luma_matte


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
            frames.append((decoded.index, fgr, luma_matte(fgr)))
    return frames
