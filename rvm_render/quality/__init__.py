"""Matte quality: the RVM paper's metrics (MAD, MSE, Grad, Conn, dtSSD) and the mattes they read.

:mod:`~rvm_render.quality.metrics` scores numpy arrays as the official evaluation does;
:mod:`~rvm_render.quality.mattes` reads a matte (alpha plane, grey matte, EXR ``A``, manifest)
frame by frame and pairs predictions with ground truth. ``rvm-render eval`` and
``bench/quality.py`` are built on these.
"""

from __future__ import annotations

from rvm_render.quality.mattes import (
    MatteClip,
    clips_in_folder,
    matte_frames,
    matte_pairs,
    open_matte,
    pair_scores,
)
from rvm_render.quality.metrics import (
    FIRST_FRAMES,
    METRIC_NAMES,
    SCALING,
    ClipScores,
    FrameScores,
    clip_scores,
    conn,
    dtssd,
    frame_scores,
    grad,
    mad,
    mean_scores,
    mse,
)

__all__ = [
    "FIRST_FRAMES",
    "METRIC_NAMES",
    "SCALING",
    "ClipScores",
    "FrameScores",
    "MatteClip",
    "clip_scores",
    "clips_in_folder",
    "conn",
    "dtssd",
    "frame_scores",
    "grad",
    "mad",
    "matte_frames",
    "matte_pairs",
    "mean_scores",
    "mse",
    "open_matte",
    "pair_scores",
]
