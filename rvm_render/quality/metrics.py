"""Matte error metrics as the RVM paper reports them: MAD, MSE, Grad, Conn, dtSSD.

Robust Video Matting (Lin et al., WACV 2022) scores alpha with the official
``evaluation/evaluate_lr.py`` of github.com/PeterL1n/RobustVideoMatting; that script needs
OpenCV and ``np.int`` (gone from numpy), so this module re-implements it in numpy alone, term
for term. Per frame, for ``pred`` and ``gt`` alpha in 0..1:

- **MAD** ``mean |pred - gt|`` x 1e3; **MSE** ``mean (pred - gt)²`` x 1e3.
- **Grad**: both mattes min-max normalised to 0..1 (as ``cv2.normalize(NORM_MINMAX)``: a
  constant matte becomes 0), filtered with the first derivatives of a Gaussian (sigma 1.4; the
  official 9x9 kernel ``g(y) g'(x)``, scaled to unit L2 norm, and its transpose; correlation
  with replicated borders, as ``cv2.filter2D``), then ``sum (|∇gt| - |∇pred|)²`` / 1e3. It is a
  sum, so it grows with the frame size. (``evaluate_hr.py`` skips the normalisation; the two
  agree whenever a matte spans 0..1.)
- **Conn** (Rhemann et al., CVPR 2009): for thresholds 0.1, 0.2, ..., 1.0, the largest
  4-connected component of ``gt >= t & pred >= t`` (``cv2.connectedComponentsWithStats``,
  ``connectivity=4``; a tie goes to the component whose first pixel comes first in raster
  order, as OpenCV numbers them); each pixel's ``l`` is the threshold before the first one at
  which it leaves that component (1 if it never does); ``phi = 1 - d·[d >= 0.15]`` with
  ``d = alpha - l``; Conn = ``sum |phi_gt - phi_pred|`` / 1e3. Thresholds and the comparisons
  are float32, as the official script's float32 arrays made them.
- **dtSSD** (Erofeev et al., 2015): ``sqrt(mean ((pred_t - pred_t-1) - (gt_t - gt_t-1))²)``
  x 1e2; frame 0 has no predecessor and scores 0, and that 0 is part of the clip's mean, as in
  the official script.

A clip's figure is the mean of its per-frame values (:func:`clip_scores`), also over its first
:data:`FIRST_FRAMES` frames; a set of clips is summarised by the mean of the clip means
(:func:`mean_scores`), each clip counting once. Sums are accumulated in float64 (the official
script summed float32; the difference is below 1e-5 relative).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = [
    "FIRST_FRAMES",
    "GRAD_SIGMA",
    "CONN_STEP",
    "METRIC_NAMES",
    "SCALING",
    "FrameScores",
    "ClipScores",
    "mad",
    "mse",
    "grad",
    "conn",
    "dtssd",
    "gaussian_gradient_filters",
    "largest_component",
    "frame_scores",
    "clip_scores",
    "mean_scores",
]

#: The opening frames scored on their own: where a recurrent network is still converging.
FIRST_FRAMES: Final = 16
#: Standard deviation of the Gaussian whose derivatives Grad filters with.
GRAD_SIGMA: Final = 1.4
#: Threshold step of Conn.
CONN_STEP: Final = 0.1
#: Metric names in report order, as the paper spells them.
METRIC_NAMES: Final = ("MAD", "MSE", "Grad", "Conn", "dtSSD")
#: How each figure is scaled, as the paper reports it.
SCALING: Final = {"MAD": "x1e3", "MSE": "x1e3", "Grad": "/1e3", "Conn": "/1e3", "dtSSD": "x1e2"}

#: Kernel truncation of the official ``gauss_filter``: the Gaussian is cut where it falls below this.
_GRAD_EPSILON: Final = 1e-2
#: Conn ignores differences to the round-down level below this.
_CONN_MIN_DIFFERENCE: Final = 0.15


@dataclass(frozen=True, slots=True)
class FrameScores:
    """The five figures, scaled as the paper reports them (see :data:`SCALING`)."""

    mad: float
    mse: float
    grad: float
    conn: float
    dtssd: float

    def as_dict(self) -> dict[str, float]:
        """``{"MAD": ..., "MSE": ..., "Grad": ..., "Conn": ..., "dtSSD": ...}``."""
        return dict(zip(METRIC_NAMES, (self.mad, self.mse, self.grad, self.conn, self.dtssd)))


@dataclass(frozen=True, slots=True)
class ClipScores:
    """One clip: the mean over all its frames, and over its first ``first_frames`` frames."""

    frames: int
    whole: FrameScores
    first: FrameScores
    first_frames: int


def _as_alpha(array: np.ndarray) -> np.ndarray:
    alpha = np.asarray(array)
    if alpha.ndim != 2:
        raise ValueError(f"a matte is one [H, W] plane, got shape {alpha.shape}")
    return alpha


def _checked(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = _as_alpha(pred), _as_alpha(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"pred is {pred.shape[1]}x{pred.shape[0]}, gt is {gt.shape[1]}x{gt.shape[0]}")
    return pred, gt


def mad(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute difference x 1e3.

    Shape:
        pred, gt: [H, W] alpha 0..1
    """
    pred, gt = _checked(pred, gt)
    return float(np.abs(pred.astype(np.float64) - gt).mean() * 1e3)


def mse(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean squared difference x 1e3.

    Shape:
        pred, gt: [H, W] alpha 0..1
    """
    pred, gt = _checked(pred, gt)
    return float(np.square(pred.astype(np.float64) - gt).mean() * 1e3)


def gaussian_gradient_filters(sigma: float = GRAD_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """The official Grad kernels: ``filter_x[i, j] = g(i - h) g'(j - h)``, unit L2 norm, and its transpose.

    ``h = ceil(sigma sqrt(-2 ln(sqrt(2 pi) sigma epsilon)))`` with epsilon 1e-2 (4 for sigma 1.4,
    so 9x9). ``filter_x`` differentiates along x (columns), ``filter_y`` along y.

    Returns:
        ``(filter_x, filter_y)``, float64 ``[2h+1, 2h+1]``.
    """
    gaussian_x, derivative_x = _gaussian_derivative_pair(sigma)
    filter_x = np.outer(gaussian_x, derivative_x)
    return filter_x, filter_x.T.copy()


def _gaussian_derivative_pair(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The separable factors of the unit-norm official kernel: ``g`` (rows) and ``g'`` (columns), each unit norm."""
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * _GRAD_EPSILON)))
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    gaussian = np.exp(-(offsets**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    derivative = -offsets * gaussian / sigma**2
    # ||outer(a, b)|| = ||a|| ||b||, so normalising each factor normalises the kernel as the official code does.
    return gaussian / np.linalg.norm(gaussian), derivative / np.linalg.norm(derivative)


def _correlated_1d(image: np.ndarray, taps: np.ndarray, axis: int, *, odd: bool) -> np.ndarray:
    """Correlation along one axis with replicated borders (``cv2.filter2D`` with BORDER_REPLICATE).

    ``taps`` are symmetric (``odd=False``) or antisymmetric (``odd=True``, centre tap 0) about their
    centre, so each pair of mirrored samples is added (subtracted) before one multiplication.
    """
    half = len(taps) // 2
    pad = [(half, half) if a == axis else (0, 0) for a in range(2)]
    padded = np.pad(image, pad, mode="edge")
    length = image.shape[axis]

    def window(k: int) -> np.ndarray:
        return padded[k : k + length] if axis == 0 else padded[:, k : k + length]

    out = np.zeros(image.shape, dtype=np.float64) if odd else taps[half] * window(half)
    for k in range(half):
        pair = window(k) - window(2 * half - k) if odd else window(k) + window(2 * half - k)
        pair *= taps[k]
        out += pair
    return out


def _gradient_magnitude(alpha: np.ndarray, sigma: float) -> np.ndarray:
    """``sqrt((filter_x ★ a)² + (filter_y ★ a)²)`` of the min-max normalised matte."""
    alpha = alpha.astype(np.float64)
    low, high = float(alpha.min()), float(alpha.max())
    span = high - low
    scale = 1.0 / span if span > np.finfo(np.float64).eps else 0.0  # cv2.normalize's NORM_MINMAX
    normalised = (alpha - low) * scale
    gaussian, derivative = _gaussian_derivative_pair(sigma)
    along_x = _correlated_1d(_correlated_1d(normalised, derivative, 1, odd=True), gaussian, 0, odd=False)
    along_y = _correlated_1d(_correlated_1d(normalised, gaussian, 1, odd=False), derivative, 0, odd=True)
    return np.sqrt(along_x**2 + along_y**2)


def grad(pred: np.ndarray, gt: np.ndarray, sigma: float = GRAD_SIGMA) -> float:
    """Gradient error: ``sum (|∇gt| - |∇pred|)²`` / 1e3 with Gaussian-derivative filters (module doc).

    Shape:
        pred, gt: [H, W] alpha 0..1
    """
    pred, gt = _checked(pred, gt)
    difference = _gradient_magnitude(gt, sigma) - _gradient_magnitude(pred, sigma)
    return float(np.square(difference).sum() / 1e3)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a boolean mask (ties: first in raster order).

    Matches ``cv2.connectedComponentsWithStats(mask, connectivity=4)`` followed by the argmax
    of the component areas. Works on horizontal runs: runs in adjacent rows whose column
    ranges overlap are joined (union-find, smaller index as root), so the cost follows the
    number of runs, not of pixels.

    Shape:
        mask: [H, W] bool -> [H, W] bool
    """
    mask = _as_alpha(mask).astype(bool)
    height, width = mask.shape
    edges = np.zeros((height, width + 2), dtype=np.int8)
    edges[:, 1:-1] = mask
    # In raster order each row's changes alternate: a run starts (+1), then ends (-1, exclusive).
    change_rows, change_cols = np.nonzero(np.diff(edges, axis=1))
    run_rows, starts, ends = change_rows[0::2], change_cols[0::2], change_cols[1::2]
    runs = len(starts)
    out = np.zeros((height, width), dtype=bool)
    if runs == 0:
        return out
    # Runs of the row above that overlap run b: end > start_b and start < end_b, found by key search.
    stride = width + 1
    start_keys = run_rows * stride + starts
    end_keys = run_rows * stride + ends
    above = (run_rows - 1) * stride
    first = np.searchsorted(end_keys, above + starts, side="right")
    last = np.searchsorted(start_keys, above + ends, side="left")
    counts = np.maximum(last - first, 0)
    lower = np.repeat(np.arange(runs), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    upper = np.repeat(first, counts) + offsets
    root = _component_roots(runs, lower, upper)
    areas = np.bincount(root, weights=ends - starts, minlength=runs)
    chosen = root == int(np.argmax(areas))  # a root is its component's first run: argmax's tie rule is OpenCV's
    marks = np.zeros((height, width + 1), dtype=np.int8)
    marks[run_rows[chosen], starts[chosen]] = 1  # runs of a row neither touch nor overlap: one mark per cell
    marks[run_rows[chosen], ends[chosen]] = -1
    out[:] = np.cumsum(marks, axis=1, dtype=np.int8)[:, :width] > 0
    return out


def _component_roots(nodes: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each node, the smallest node index of its connected component (edges ``a[k] - b[k]``)."""
    parent = np.arange(nodes)
    while len(a):
        root_a, root_b = parent[a], parent[b]
        apart = root_a != root_b
        if not apart.any():
            break
        a, b, root_a, root_b = a[apart], b[apart], root_a[apart], root_b[apart]
        np.minimum.at(parent, np.maximum(root_a, root_b), np.minimum(root_a, root_b))
        while True:  # every node straight to its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def conn(pred: np.ndarray, gt: np.ndarray, step: float = CONN_STEP) -> float:
    """Connectivity error / 1e3 (module doc), threshold step ``step``.

    Shape:
        pred, gt: [H, W] alpha 0..1
    """
    pred, gt = _checked(pred, gt)
    pred, gt = pred.astype(np.float32), gt.astype(np.float32)
    thresholds = np.arange(0, 1 + step, step).astype(np.float32)
    round_down = np.full(gt.shape, -1.0, dtype=np.float32)
    for i in range(1, len(thresholds)):
        kept = largest_component((gt >= thresholds[i]) & (pred >= thresholds[i]))
        round_down[(round_down == -1) & ~kept] = thresholds[i - 1]
    round_down[round_down == -1] = 1
    gt_diff = gt - round_down
    pred_diff = pred - round_down
    gt_phi = 1 - gt_diff * (gt_diff >= np.float32(_CONN_MIN_DIFFERENCE))
    pred_phi = 1 - pred_diff * (pred_diff >= np.float32(_CONN_MIN_DIFFERENCE))
    return float(np.abs(gt_phi.astype(np.float64) - pred_phi).sum() / 1e3)


def dtssd(pred: np.ndarray, pred_before: np.ndarray, gt: np.ndarray, gt_before: np.ndarray) -> float:
    """Temporal error between frame t and t-1: ``sqrt(mean (Δpred - Δgt)²)`` x 1e2.

    Shape:
        pred, pred_before, gt, gt_before: [H, W] alpha 0..1
    """
    pred, gt = _checked(pred, gt)
    pred_before, gt_before = _checked(pred_before, gt_before)
    _checked(pred, pred_before)
    change = (pred.astype(np.float64) - pred_before) - (gt.astype(np.float64) - gt_before)
    return float(math.sqrt(np.square(change).sum() / gt.size) * 1e2)


def frame_scores(
    pred: np.ndarray,
    gt: np.ndarray,
    pred_before: np.ndarray | None = None,
    gt_before: np.ndarray | None = None,
) -> FrameScores:
    """All five figures of one frame; dtSSD is 0 without the frame before (frame 0 of a clip).

    Shape:
        pred, gt, pred_before, gt_before: [H, W] alpha 0..1
    """
    temporal = 0.0 if pred_before is None or gt_before is None else dtssd(pred, pred_before, gt, gt_before)
    return FrameScores(mad(pred, gt), mse(pred, gt), grad(pred, gt), conn(pred, gt), temporal)


def mean_scores(scores: Sequence[FrameScores]) -> FrameScores:
    """Figure by figure mean of several scores (of frames, or of clips)."""
    if not scores:
        raise ValueError("no scores to average")
    table = np.array([[s.mad, s.mse, s.grad, s.conn, s.dtssd] for s in scores], dtype=np.float64)
    return FrameScores(*(float(v) for v in table.mean(axis=0)))


def clip_scores(
    frame_pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    first_frames: int = FIRST_FRAMES,
    on_frame: Callable[[int], None] | None = None,
) -> ClipScores:
    """Score a clip frame by frame: the means over all frames and over the first ``first_frames``.

    Args:
        frame_pairs: ``(pred, gt)`` per frame, in order; only two frames are held at a time.
        first_frames: how many opening frames to score on their own (fewer if the clip is shorter).
        on_frame: called with the number of frames scored so far, after each.

    Shape:
        each pred, gt: [H, W] alpha 0..1

    Raises:
        ValueError: no frames, or a pair of different sizes.
    """
    per_frame: list[FrameScores] = []
    pred_before: np.ndarray | None = None
    gt_before: np.ndarray | None = None
    for pred, gt in frame_pairs:
        per_frame.append(frame_scores(pred, gt, pred_before, gt_before))
        pred_before, gt_before = pred, gt
        if on_frame is not None:
            on_frame(len(per_frame))
    if not per_frame:
        raise ValueError("a clip to score has no frames")
    opening = per_frame[:first_frames]
    return ClipScores(len(per_frame), mean_scores(per_frame), mean_scores(opening), len(opening))
