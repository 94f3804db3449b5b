"""The warm start (``--warmup N``): each shot's first frames are matted from a state converged on the shot.

Second computation throughout: the engine itself, run over the frames in the order the warm
start promises (the shot's next N frames reversed, discarded, then the shot forward).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from rvm_render.cli.main import main
from rvm_render.engine import EngineOptions, Matter, open_matter
from rvm_render.jobs.checkpoint import default_work_dir
from rvm_render.media.probe import probe
from rvm_render.media.reader import open_reader
from support.frames import exr_alphas

RATIO = 0.25
WARMUP = 4
SHOT_FRAMES = 12  # the spliced clip: juggle 0..11, then a cut to the dog at 12..23


def _alpha(out: Path, stem: str, frames: range) -> np.ndarray:
    return exr_alphas(out / f"{stem}_matte.%06d.exr", frames).astype(np.float32)


def _src(clip: Path, first: int, last: int) -> torch.Tensor:
    with open_reader(probe(clip), first, last) as reader:
        return torch.stack([torch.from_numpy(frame.rgb).permute(2, 0, 1) for frame in reader]).float() / 255


def _warm_then_forward(matter: Matter, shot: torch.Tensor, warmup: int) -> np.ndarray:
    """The promise: reset, the first ``warmup`` frames in reverse (discarded), then the shot; as EXR halves."""
    matter.reset()
    if warmup:
        matter.matte(shot[:warmup].flip(0))
    return matter.matte(shot).pha[:, 0].numpy().astype(np.float16).astype(np.float32)


def _matte(clip: Path, out: Path, weights: Path, *extra: str) -> None:
    assert main(["-q", "matte", str(clip), "-o", str(out), "--weights", str(weights), "--formats", "exr",
                 "--downsample-ratio", str(RATIO), "--device", "cpu", *extra]) == 0  # fmt: skip


@pytest.fixture(scope="module")
def matter(tfjs_weights: Path) -> Matter:
    return open_matter(tfjs_weights, EngineOptions(device="cpu", downsample_ratio=RATIO))


@pytest.fixture(scope="module")
def spliced(tmp_path_factory: pytest.TempPathFactory, clips_dir: Path) -> Path:
    """Two shots of real footage with a hard cut at frame 12, lossless (FFV1), 320x180."""
    path = tmp_path_factory.mktemp("spliced") / "spliced.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        for shot, name in enumerate(("05_default_juggle.mp4", "01_dog.mp4")):
            with av.open(str(clips_dir / name)) as source:
                for index, frame in enumerate(source.decode(video=0)):
                    if index == SHOT_FRAMES:
                        break
                    picture = frame.reformat(width=320, height=180, format="yuv420p")
                    picture.pts, picture.time_base = shot * SHOT_FRAMES + index, Fraction(1, 24)
                    out.mux(stream.encode(picture))
        out.mux(stream.encode(None))
    return path


def test_a_clip_starts_from_the_state_of_its_next_frames_reversed(
    tmp_path: Path, clips_dir: Path, tfjs_weights: Path, matter: Matter
) -> None:
    clip = clips_dir / "bedroom.mp4"
    _matte(clip, tmp_path / "warm", tfjs_weights, "--frames", "0-11", "--warmup", str(WARMUP))
    _matte(clip, tmp_path / "cold", tfjs_weights, "--frames", "0-11", "--warmup", "0")
    warm, cold = (_alpha(tmp_path / name, "bedroom", range(12)) for name in ("warm", "cold"))

    shot = _src(clip, 0, 11)
    np.testing.assert_allclose(warm, _warm_then_forward(matter, shot, WARMUP), atol=2e-3)
    np.testing.assert_allclose(cold, _warm_then_forward(matter, shot, 0), atol=2e-3)
    assert np.abs(warm[0] - cold[0]).max() > 0.05, "the warm start changes the first frame"


def test_segmented_renders_warm_each_shot_start_and_only_those(
    tmp_path: Path, spliced: Path, tfjs_weights: Path, matter: Matter
) -> None:
    out = tmp_path / "segmented"
    _matte(spliced, out, tfjs_weights, "--warmup", str(WARMUP), "--segment-frames", "8", "--keep-work-dir")
    plan = json.loads((default_work_dir(out, "spliced") / "plan.json").read_text())
    assert plan["cuts"] == [SHOT_FRAMES], "the cut was detected"
    inner = [s["first_frame"] for s in plan["segments"] if not s["starts_at_cut"]]
    assert inner and all(0 < first < SHOT_FRAMES or first > SHOT_FRAMES for first in inner)
    alpha = _alpha(out, "spliced", range(2 * SHOT_FRAMES))

    # Each shot on its own, warm-started; the segment boundaries inside a shot hand the state over.
    first = _warm_then_forward(matter, _src(spliced, 0, SHOT_FRAMES - 1), WARMUP)
    second = _warm_then_forward(matter, _src(spliced, SHOT_FRAMES, 2 * SHOT_FRAMES - 1), WARMUP)
    np.testing.assert_allclose(alpha, np.concatenate([first, second]), atol=2e-3)

    # Bit for bit what one pass writes for the first shot: a mid-shot segment continues the state (the
    # warm start belongs to shot starts only), which is also why a resumed render stays bit-exact.
    single = tmp_path / "single"
    _matte(spliced, single, tfjs_weights, "--warmup", str(WARMUP), "--segment-frames", "0")
    np.testing.assert_array_equal(alpha[:SHOT_FRAMES], _alpha(single, "spliced", range(SHOT_FRAMES)))
