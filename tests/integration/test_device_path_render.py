"""A render whose payloads are made by the GPU data path's torch code (here on torch's CPU device)
matches the CPU path's render of the same frames, deliverable by deliverable."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from rvm_render.engine import EngineOptions, open_matter
from rvm_render.media.writers import OutputFormat
from rvm_render.pipeline.render import RenderRequest, RenderSettings, render_clip
from support.frames import exr_alphas, planes_of, short_clip

FRAMES = 4
FORMATS = (OutputFormat.PRORES4444, OutputFormat.EXR, OutputFormat.ALPHA, OutputFormat.PNG, OutputFormat.COMP)


@pytest.fixture(scope="module")
def renders(clips_dir: Path, tfjs_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """The same short clip rendered with payloads made by the writers (False) and by torch (True)."""
    folder = tmp_path_factory.mktemp("device_path")
    clip = short_clip(clips_dir / "05_default_juggle.mp4", folder / "juggle.mp4", FRAMES)
    outputs = {}
    for on_device in (False, True):
        matter = open_matter(tfjs_weights, EngineOptions(device="cpu", downsample_ratio=0.25))
        settings = RenderSettings(formats=FORMATS, batch_frames=2, convert_on_device=on_device)
        out = folder / ("device" if on_device else "host")
        assert render_clip(RenderRequest(clip, out), settings, matter).frames == FRAMES
        outputs[on_device] = out
    return outputs


def _movie_planes(path: Path) -> list[list[np.ndarray]]:
    """Every frame's planes of a 10-bit ProRes movie."""
    with av.open(str(path)) as container:
        return [planes_of(frame) for frame in container.decode(video=0)]


@pytest.mark.parametrize("name", ["juggle_matte.mov", "juggle_alpha.mov"])
def test_prores_code_values_within_one(renders: dict[bool, Path], name: str) -> None:
    host, device = (_movie_planes(renders[key] / name) for key in (False, True))
    assert len(host) == len(device) == FRAMES
    for host_planes, device_planes in zip(host, device, strict=True):
        for a, b in zip(host_planes, device_planes, strict=True):
            assert np.abs(a - b).max() <= 1


def test_exr_and_png_frames_equal(renders: dict[bool, Path]) -> None:
    pattern = "juggle_matte.%06d.exr"
    host = exr_alphas(renders[False] / pattern, range(FRAMES))
    device = exr_alphas(renders[True] / pattern, range(FRAMES))
    np.testing.assert_array_equal(host, device)  # half-float rounding of the same float32 values
    for number in range(FRAMES):
        png = f"juggle_matte.{number:06d}.png"
        assert (renders[False] / png).read_bytes() == (renders[True] / png).read_bytes()


def test_comp_decodes_within_one(renders: dict[bool, Path]) -> None:
    frames = {}
    for key in (False, True):
        with av.open(str(renders[key] / "juggle_comp.mp4")) as container:
            frames[key] = [f.to_ndarray(format="yuv420p").astype(np.int32) for f in container.decode(video=0)]
    assert len(frames[True]) == FRAMES
    for a, b in zip(frames[False], frames[True], strict=True):
        assert np.abs(a - b).max() <= 1
