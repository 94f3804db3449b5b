"""The engine on a CUDA device in fp16 (``--precision auto`` there), against the official golden outputs.

These run only where a CUDA device is present (a GPU test machine); everywhere else they are
reported as skipped, naming why.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rvm_render.engine import EngineOptions, open_matter
from support.cli import matte

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def golden(shared_dir: Path) -> dict[str, np.ndarray]:
    with np.load(shared_dir / "testdata" / "golden" / "juggle_golden.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_fp16_engine_stays_near_the_golden(golden: dict[str, np.ndarray], tfjs_weights: Path, ratio: float) -> None:
    matter = open_matter(tfjs_weights, EngineOptions(device="cuda", downsample_ratio=ratio))
    assert matter.precision == "fp16"
    src = torch.from_numpy(golden["src"]).permute(0, 3, 1, 2).float() / 255
    pha = torch.cat([matter.matte(batch).pha for batch in src.split(4)])[:, 0].numpy()
    key = "dsr1" if ratio == 1 else "dsr05"
    diff = np.abs(pha - golden[f"pha_{key}"].astype(np.float32))
    assert diff.mean() <= 1e-4 and diff.max() <= 2e-2, f"max |d| {diff.max():.3g}, mean {diff.mean():.3g}"
    assert (diff > 0.1).sum() == 0


def test_fp16_render_of_a_clip(tmp_path: Path, clips_dir: Path, tfjs_weights: Path) -> None:
    assert matte([clips_dir / "05_default_juggle.mp4"], tmp_path, tfjs_weights, "--device", "cuda",
                 "--formats", "prores4444,exr", "--frames", "0-47") == 0  # fmt: skip
    manifest = json.loads((tmp_path / "05_default_juggle.rvm.json").read_text())
    assert manifest["frames"] == 48 and len(list(tmp_path.glob("*.exr"))) == 48
