"""The RVM paper's matte metrics: hand-computed values on tiny mattes, and a second computation on real ones.

The second computation follows the published definitions literally (dense 9x9 correlation,
connected components by label propagation), sharing no code with ``rvm_render.quality.metrics``
(which filters separably and labels horizontal runs).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rvm_render.quality.metrics import (
    clip_scores,
    conn,
    dtssd,
    frame_scores,
    gaussian_gradient_filters,
    grad,
    largest_component,
    mad,
    mean_scores,
    mse,
)

# --- hand-computed values on 4x4 mattes -------------------------------------------------


def _pair() -> tuple[np.ndarray, np.ndarray]:
    """gt all 0; pred 0 but for one pixel at 1.0 and one at 0.5."""
    gt = np.zeros((4, 4), dtype=np.float32)
    pred = gt.copy()
    pred[0, 0], pred[2, 3] = 1.0, 0.5
    return pred, gt


def test_mad_and_mse_by_hand() -> None:
    pred, gt = _pair()
    # MAD = (1 + 0.5) / 16 = 0.09375 -> x1e3 = 93.75
    assert mad(pred, gt) == pytest.approx(93.75)
    # MSE = (1 + 0.25) / 16 = 0.078125 -> x1e3 = 78.125
    assert mse(pred, gt) == pytest.approx(78.125)


def test_dtssd_by_hand() -> None:
    pred, gt = _pair()
    still = np.zeros((4, 4), dtype=np.float32)
    # pred changed by (1, 0.5) from an empty frame, gt did not: sqrt((1 + 0.25) / 16) = sqrt(5) / 8; x1e2
    assert dtssd(pred, still, gt, still) == pytest.approx(100 * math.sqrt(5) / 8)
    # an error that stays put is not temporal error: pred = gt + 0.3 in both frames -> 0 (but MAD 300)
    moving, empty = np.linspace(0.0, 0.7, 16).reshape(4, 4), np.zeros((4, 4))
    assert dtssd(moving + 0.3, empty + 0.3, moving, empty) == pytest.approx(0.0, abs=1e-9)
    assert mad(moving + 0.3, moving) == pytest.approx(300.0)


def test_conn_by_hand_uses_four_connectivity() -> None:
    gt = np.ones((4, 4), dtype=np.float32)
    pred = np.array(
        [[1, 1, 0, 0],
         [1, 1, 0, 0],
         [0, 0, 0.75, 0],
         [0, 0, 0, 0]], dtype=np.float32,
    )
    # Every threshold 0.1..1.0: the 2x2 block is the largest component; pixel (2,2) touches it only
    # diagonally, so with 4-connectivity it leaves at 0.1 (round-down l = 0), as the 11 zero pixels do.
    # Block: l = 1, d = 0 for both -> 0.
    # 11 zero pixels: gt d = 1 -> phi 0; pred d = 0 -> phi 1 -> 11 x 1 = 11.
    # (2,2): gt d = 1 -> phi 0; pred d = 0.75 -> phi 0.25 -> 0.25.
    # Conn = 11.25 / 1e3. (8-connectivity would keep (2,2) until 0.8, l = 0.7: 0.3 there, 11.3 in all.)
    assert conn(pred, gt) == pytest.approx(0.01125, rel=1e-6)


def test_conn_by_hand_single_dip() -> None:
    gt = np.ones((4, 4), dtype=np.float32)
    pred = gt.copy()
    pred[1, 2] = 0.55
    # Thresholds up to 0.5 keep all 16 pixels together; at 0.6 pixel (1,2) drops out (the other 15
    # stay 4-connected), so its l = 0.5; the rest never leave, l = 1.
    # (1,2): gt d = 0.5 >= 0.15 -> phi 0.5; pred d = 0.05 < 0.15 -> phi 1 -> |0.5 - 1| = 0.5. Others: 0.
    assert conn(pred, gt) == pytest.approx(0.0005, rel=1e-6)


def test_conn_tie_goes_to_the_component_first_in_raster_order() -> None:
    gt = np.ones((4, 4), dtype=np.float32)
    pred = np.array(
        [[1, 1, 0, 0],
         [0, 0, 0, 0],
         [0, 0, 0.75, 0.75],
         [0, 0, 0, 0]], dtype=np.float32,
    )
    # Two 2-pixel components up to threshold 0.7; OpenCV numbers the top one first and argmax keeps it.
    # Top pair: l = 1 -> 0. 12 zero pixels: 1 each -> 12. Bottom pair: l = 0, gt phi 0, pred phi 0.25 -> 0.5.
    # Conn = 12.5 / 1e3 (had the bottom pair won: l = 0.7 there, 0.3 each, and 12.6).
    assert conn(pred, gt) == pytest.approx(0.0125, rel=1e-6)
    kept = largest_component(pred >= 0.5)
    assert kept.sum() == 2 and kept[0, 0] and kept[0, 1]


def test_largest_component_joins_rows_only_through_shared_columns() -> None:
    mask = np.array(
        [[1, 1, 0, 1, 1, 1],
         [0, 1, 0, 1, 0, 0],
         [0, 1, 1, 1, 0, 1],
         [1, 0, 0, 0, 1, 1]], dtype=bool,
    )
    # The U through (1,1), (2,1..3), (1,3) joins both top runs: 2 + 3 + 1 + 3 + 1 = 10 pixels.
    # (2,5), (3,4), (3,5) is 3 pixels ((1,5) and (2,4) are 0); (3,0) is 1.
    expected = np.zeros_like(mask)
    expected[0, [0, 1, 3, 4, 5]] = True
    expected[1, [1, 3]] = True
    expected[2, [1, 2, 3]] = True
    assert np.array_equal(largest_component(mask), expected)
    assert not largest_component(np.zeros((3, 3), dtype=bool)).any()


def test_grad_kernel_is_the_official_nine_by_nine() -> None:
    filter_x, filter_y = gaussian_gradient_filters(1.4)
    # half size = ceil(1.4 sqrt(-2 ln(sqrt(2 pi) 1.4 0.01))) = ceil(1.4 x 2.588) = ceil(3.62) = 4 -> 9x9
    assert filter_x.shape == (9, 9)
    assert np.sqrt((filter_x**2).sum()) == pytest.approx(1.0)
    assert np.allclose(filter_x, -filter_x[:, ::-1]) and np.allclose(filter_x, filter_x[::-1, :])
    assert np.array_equal(filter_y, filter_x.T)
    # g'(x) = -x g(x) / sigma^2: negative to the right of the centre, so the kernel falls left to right
    assert filter_x[4, 5] < 0 < filter_x[4, 3]


def test_grad_by_hand() -> None:
    ramp = np.tile(np.linspace(0.0, 1.0, 12, dtype=np.float32), (12, 1))
    # identical mattes, or any two constant mattes (min-max normalisation maps a constant to 0): 0
    assert grad(ramp, ramp) == 0.0
    assert grad(np.full((8, 8), 0.3, np.float32), np.ones((8, 8), np.float32)) == 0.0
    # the official min-max normalisation makes Grad blind to a gain: 0.5 * gt is normalised back to gt
    assert grad(0.5 * ramp, ramp) == pytest.approx(0.0, abs=1e-12)
    # a flat prediction against an edge scores the edge's whole gradient energy: > 0
    assert grad(np.zeros_like(ramp), ramp) > 0


def test_frame_and_clip_means_by_hand() -> None:
    gt = [np.zeros((4, 4), dtype=np.float32)] * 3
    pred = [np.zeros((4, 4), np.float32), np.full((4, 4), 0.5, np.float32), np.full((4, 4), 0.5, np.float32)]
    scores = clip_scores(zip(pred, gt), first_frames=2)
    # per-frame MAD 0, 500, 500; dtSSD 0 (frame 0 has none), 50 (a 0.5 jump), 0
    assert scores.frames == 3 and scores.first_frames == 2
    assert scores.whole.mad == pytest.approx(1000 / 3)
    assert scores.whole.dtssd == pytest.approx(50 / 3)
    assert scores.first.mad == pytest.approx(250.0)
    assert scores.first.dtssd == pytest.approx(25.0)
    # a clip shorter than first_frames: first == whole
    short = clip_scores(zip(pred, gt), first_frames=16)
    assert short.first == short.whole and short.first_frames == 3
    # the mean over clips counts each clip once
    assert mean_scores([scores.whole, scores.first]).mad == pytest.approx((1000 / 3 + 250) / 2)
    assert frame_scores(pred[1], gt[1]).dtssd == 0.0


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="pred is 4x3, gt is 4x4"):
        mad(np.zeros((3, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="no frames"):
        clip_scores([])


# --- a second computation on real mattes ----------------------------------------------------

SIGMA, EPSILON, STEP = 1.4, 1e-2, 0.1


def _reference_grad(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dense 2D correlation with the 9x9 kernel written out, replicated border, min-max normalised input."""
    half = int(np.ceil(SIGMA * np.sqrt(-2 * np.log(np.sqrt(2 * np.pi) * SIGMA * EPSILON))))

    def gauss(x: np.ndarray) -> np.ndarray:
        return np.exp(-(x**2) / (2 * SIGMA**2)) / (SIGMA * np.sqrt(2 * np.pi))

    rows, cols = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    kernel_x = gauss(rows) * (-cols * gauss(cols) / SIGMA**2)
    kernel_x /= np.sqrt((kernel_x**2).sum())
    kernel_y = kernel_x.T

    def magnitude(alpha: np.ndarray) -> np.ndarray:
        alpha = alpha.astype(np.float64)
        span = alpha.max() - alpha.min()
        alpha = (alpha - alpha.min()) / span if span > 0 else np.zeros_like(alpha)
        padded = np.pad(alpha, half, mode="edge")
        h, w = alpha.shape
        gx = np.zeros_like(alpha)
        gy = np.zeros_like(alpha)
        for i in range(2 * half + 1):
            for j in range(2 * half + 1):
                window = padded[i : i + h, j : j + w]
                gx += kernel_x[i, j] * window
                gy += kernel_y[i, j] * window
        return np.sqrt(gx**2 + gy**2)

    return float(((magnitude(gt) - magnitude(pred)) ** 2).sum() / 1000)


def _reference_largest(mask: np.ndarray) -> np.ndarray:
    """Largest 4-connected component by min-label propagation (labels = first pixel's raster index)."""
    h, w = mask.shape
    none = h * w
    labels = np.where(mask, np.arange(h * w).reshape(h, w), none)
    while True:
        spread = labels.copy()
        spread[1:] = np.minimum(spread[1:], labels[:-1])
        spread[:-1] = np.minimum(spread[:-1], labels[1:])
        spread[:, 1:] = np.minimum(spread[:, 1:], labels[:, :-1])
        spread[:, :-1] = np.minimum(spread[:, :-1], labels[:, 1:])
        spread = np.where(mask, spread, none)
        flat = np.append(spread.ravel(), none)
        spread = np.where(mask, flat[spread], none)  # jump to the label's own label
        if np.array_equal(spread, labels):
            break
        labels = spread
    if not mask.any():
        return np.zeros_like(mask)
    ids, sizes = np.unique(labels[mask], return_counts=True)
    return labels == ids[np.argmax(sizes)]  # ids ascend, so a tie keeps the first in raster order


def _reference_conn(pred: np.ndarray, gt: np.ndarray) -> float:
    pred, gt = pred.astype(np.float32), gt.astype(np.float32)
    levels = [np.float32(v) for v in np.arange(0, 1 + STEP, STEP)]
    level = np.full(gt.shape, np.nan, dtype=np.float32)
    for previous, threshold in zip(levels, levels[1:]):
        inside = _reference_largest((gt >= threshold) & (pred >= threshold))
        level[np.isnan(level) & ~inside] = previous
    level[np.isnan(level)] = 1.0

    def phi(alpha: np.ndarray) -> np.ndarray:
        d = alpha - level
        return 1 - np.where(d >= np.float32(0.15), d, np.float32(0))

    return float(np.abs(phi(gt).astype(np.float64) - phi(pred)).sum() / 1000)


def _box_blurred(alpha: np.ndarray, radius: int) -> np.ndarray:
    padded = np.pad(alpha.astype(np.float64), radius, mode="edge")
    h, w = alpha.shape
    total = np.zeros((h, w))
    for i in range(2 * radius + 1):
        for j in range(2 * radius + 1):
            total += padded[i : i + h, j : j + w]
    return (total / (2 * radius + 1) ** 2).astype(np.float32)


@pytest.fixture(scope="module")
def real_mattes(shared_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(gt, a plausible prediction) for three real Composition-1k alphas (160x160 crops): blurred, shifted,
    noisy, dented."""
    pairs = []
    rng = np.random.default_rng(7)
    for name in ("181625b_7", "fe34591_3", "8cc6d66_0"):
        alpha = np.asarray(Image.open(shared_dir / "testdata" / "gt" / "alpha" / f"{name}.png"), dtype=np.float32)
        gt = alpha[60:220, 80:240] / 255
        pred = np.roll(_box_blurred(gt, 2), (2, -3), axis=(0, 1))
        pred += rng.normal(0, 0.02, gt.shape).astype(np.float32)
        pred[40:80, 20:50] *= 0.3
        pairs.append((gt, np.clip(pred, 0, 1)))
    return pairs


def test_grad_and_conn_match_a_second_computation_on_real_mattes(
    real_mattes: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    for gt, pred in real_mattes:
        assert grad(pred, gt) == pytest.approx(_reference_grad(pred, gt), rel=1e-9)
        assert conn(pred, gt) == pytest.approx(_reference_conn(pred, gt), rel=1e-6)
        assert grad(pred, gt) > 0.1 and conn(pred, gt) > 0.1  # the perturbation is measured, not lost
        assert conn(gt, gt) == 0.0 and grad(gt, gt) == 0.0


def test_largest_component_matches_label_propagation_on_real_mattes(
    real_mattes: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    for gt, pred in real_mattes:
        for threshold in (0.1, 0.5, 0.9):
            mask = (gt >= threshold) & (pred >= threshold)
            assert np.array_equal(largest_component(mask), _reference_largest(mask))


def test_mad_mse_dtssd_match_the_definitions_on_real_mattes(
    real_mattes: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    (gt0, pred0), (gt1, pred1) = real_mattes[0], real_mattes[1]
    assert mad(pred0, gt0) == pytest.approx(np.mean(np.abs(pred0.astype(np.float64) - gt0)) * 1e3, rel=1e-9)
    assert mse(pred0, gt0) == pytest.approx(np.mean((pred0.astype(np.float64) - gt0) ** 2) * 1e3, rel=1e-9)
    change = (pred1.astype(np.float64) - pred0) - (gt1.astype(np.float64) - gt0)
    assert dtssd(pred1, pred0, gt1, gt0) == pytest.approx(np.sqrt((change**2).sum() / gt1.size) * 1e2, rel=1e-9)
