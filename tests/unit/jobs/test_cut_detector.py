"""jobs.cuts building blocks on real frames: thumbnail, HSV, distance, streaming rules."""

from __future__ import annotations

import colorsys
from pathlib import Path

import av
import numpy as np
import pytest

from rvm_render.jobs.cuts import (
    DEFAULT_CUT_THRESHOLD,
    THUMBNAIL_SIZE,
    CutDetector,
    content_distance,
    detect_cuts,
    shot_thumbnail,
)


def _first_frames(path: Path, count: int, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if size is not None:
                frame = frame.reformat(width=size[0], height=size[1])
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return frames


@pytest.fixture(scope="module")
def juggle(clips_dir: Path) -> list[np.ndarray]:
    return _first_frames(clips_dir / "05_default_juggle.mp4", 3)


@pytest.fixture(scope="module")
def bedroom(clips_dir: Path) -> np.ndarray:
    """A frame of another shot at the juggle clip's size."""
    return _first_frames(clips_dir / "bedroom.mp4", 1, size=(1280, 720))[0]


def _thumbnail_by_loops(rgb: np.ndarray) -> np.ndarray:
    """Second computation: per-block float means, then colorsys HSV per pixel."""
    width, height = THUMBNAIL_SIZE
    rows, cols = rgb.shape[:2]
    out = np.zeros((height, width, 3))
    for y in range(height):
        for x in range(width):
            block = rgb[y * rows // height:(y + 1) * rows // height, x * cols // width:(x + 1) * cols // width]
            mean = block.reshape(-1, 3).astype(np.float64).mean(axis=0) / 255.0
            out[y, x] = colorsys.rgb_to_hsv(*mean)
    return out


@pytest.mark.parametrize("crop", [(720, 1280), (541, 1001)], ids=["even-blocks", "uneven-blocks"])
def test_thumbnail_matches_a_second_computation(juggle: list[np.ndarray], crop: tuple[int, int]) -> None:
    rgb = np.ascontiguousarray(juggle[0][: crop[0], : crop[1]])
    thumbnail = shot_thumbnail(rgb)
    assert thumbnail.shape == (THUMBNAIL_SIZE[1], THUMBNAIL_SIZE[0], 3) and thumbnail.dtype == np.float32
    reference = _thumbnail_by_loops(rgb)
    # Hue is circular: compare it on the circle.
    hue_error = np.abs(thumbnail[..., 0] - reference[..., 0])
    assert np.minimum(hue_error, 1 - hue_error).max() < 1e-4
    np.testing.assert_allclose(thumbnail[..., 1:], reference[..., 1:], atol=1e-5)


def test_sixteen_bit_frame_gives_the_same_thumbnail(juggle: list[np.ndarray]) -> None:
    wide = juggle[0].astype(np.uint16) * 257
    np.testing.assert_allclose(shot_thumbnail(wide), shot_thumbnail(juggle[0]), atol=1e-6)


def test_distance_is_zero_for_same_and_symmetric(juggle: list[np.ndarray], bedroom: np.ndarray) -> None:
    a, b = shot_thumbnail(juggle[0]), shot_thumbnail(bedroom)
    assert content_distance(a, a) == 0.0
    assert content_distance(a, b) == pytest.approx(content_distance(b, a))
    assert 0.0 < content_distance(shot_thumbnail(juggle[0]), shot_thumbnail(juggle[1])) < content_distance(a, b) <= 1.0


def test_hue_difference_wraps_around() -> None:
    red = np.zeros((36, 64, 3), np.float32)
    red[..., 1:] = 1.0
    nearly_red = red.copy()
    nearly_red[..., 0] = 0.99
    assert content_distance(red, nearly_red) == pytest.approx(0.02 / 3, abs=1e-6)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (np.zeros((720, 1280, 3), np.float32), TypeError),
        (np.zeros((720, 1280), np.uint8), ValueError),
        (np.zeros((20, 1280, 3), np.uint8), ValueError),
    ],
    ids=["float", "grey", "too-small"],
)
def test_unusable_frames_are_refused(frame: np.ndarray, error: type[Exception]) -> None:
    with pytest.raises(error):
        shot_thumbnail(frame)


def test_first_frame_never_starts_a_shot(bedroom: np.ndarray) -> None:
    detector = CutDetector()
    assert detector.push(0, bedroom) is False and detector.last_distance is None
    assert detect_cuts([]) == [] and detect_cuts([bedroom]) == []


def test_frame_index_must_increase(juggle: list[np.ndarray]) -> None:
    detector = CutDetector()
    detector.push(5, juggle[0])
    with pytest.raises(ValueError, match="must increase"):
        detector.push(5, juggle[1])


def test_flash_frame_is_two_cuts_unless_shots_have_a_minimum(juggle: list[np.ndarray], bedroom: np.ndarray) -> None:
    frames = [juggle[0], juggle[1], bedroom, juggle[2]]
    assert detect_cuts(frames) == [2, 3]
    assert detect_cuts(frames, min_shot_frames=2) == [2]
    assert detect_cuts([juggle[0], bedroom, bedroom], min_shot_frames=2) == [], "a 1-frame first shot"


def test_threshold_decides(juggle: list[np.ndarray], bedroom: np.ndarray) -> None:
    frames = [juggle[0], bedroom]
    distance = content_distance(shot_thumbnail(juggle[0]), shot_thumbnail(bedroom))
    assert distance > DEFAULT_CUT_THRESHOLD
    assert detect_cuts(frames, threshold=distance) == [1]
    assert detect_cuts(frames, threshold=min(1.0, distance * 1.001)) == []


@pytest.mark.parametrize(("kwargs", "match"), [({"threshold": 0.0}, "threshold"), ({"threshold": 1.5}, "threshold"),
                                               ({"min_shot_frames": 0}, "min_shot_frames")])
def test_detector_settings_are_checked(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CutDetector(**kwargs)  # type: ignore[arg-type]
