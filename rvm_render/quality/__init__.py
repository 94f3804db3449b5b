"""Matte quality: the RVM paper's metrics (MAD, MSE, Grad, Conn, dtSSD) and the mattes they read.

:mod:`~rvm_render.quality.metrics` scores numpy arrays as the official evaluation does;
:mod:`~rvm_render.quality.mattes` reads a matte (alpha plane, grey matte, EXR ``A``, manifest)
frame by frame and pairs predictions with ground truth. ``rvm-render eval`` and
``bench/quality.py`` are built on these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rvm_render.lazy import lazy_attributes

if TYPE_CHECKING:
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

#: Imported on first use: importing a light module of the package loads none of these.
__getattr__ = lazy_attributes(__name__, {
    "MatteClip": "rvm_render.quality.mattes",
    "clips_in_folder": "rvm_render.quality.mattes",
    "matte_frames": "rvm_render.quality.mattes",
    "matte_pairs": "rvm_render.quality.mattes",
    "open_matte": "rvm_render.quality.mattes",
    "pair_scores": "rvm_render.quality.mattes",
    "FIRST_FRAMES": "rvm_render.quality.metrics",
    "METRIC_NAMES": "rvm_render.quality.metrics",
    "SCALING": "rvm_render.quality.metrics",
    "ClipScores": "rvm_render.quality.metrics",
    "FrameScores": "rvm_render.quality.metrics",
    "clip_scores": "rvm_render.quality.metrics",
    "conn": "rvm_render.quality.metrics",
    "dtssd": "rvm_render.quality.metrics",
    "frame_scores": "rvm_render.quality.metrics",
    "grad": "rvm_render.quality.metrics",
    "mad": "rvm_render.quality.metrics",
    "mean_scores": "rvm_render.quality.metrics",
    "mse": "rvm_render.quality.metrics",
})

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
