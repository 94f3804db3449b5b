"""The GPU data path's torch conversions, run on torch's CPU device, against the writers' numpy ones.

Frames are the network's own golden outputs on 05_default_juggle (fgr, pha); each payload the
device path makes must match what the writer makes from the same frames: ProRes code values
within 1, half floats within half-float rounding (here: equal), integer planes equal.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from rvm_render.media import MediaInfo, colour
from rvm_render.media.probe import probe
from rvm_render.media.reader import DecodedFrame
from rvm_render.media.writers import OutputFormat, open_writer, parse_background
from rvm_render.media.writers.alpha import matte_luma as numpy_matte_luma
from rvm_render.media.writers.prores4444 import alpha_codes
from rvm_render.pipeline.device_path import (
    Transfers,
    comp_planes,
    device_feed,
    exr_planes,
    integer_batches,
    matte_luma,
    png_rgba,
    prores4444_planes,
)

FRAMES = 4


@pytest.fixture(scope="module")
def matted(shared_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Golden network output: fgr [T, H, W, 3] and pha [T, H, W], float32 0..1."""
    with np.load(shared_dir / "testdata" / "golden" / "juggle_golden.npz") as data:
        return data["fgr_dsr05"][:FRAMES].astype(np.float32), data["pha_dsr05"][:FRAMES].astype(np.float32)


@pytest.fixture(scope="module")
def tensors(matted: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """The same frames as the engine leaves them: fgr [T, 3, H, W], pha [T, 1, H, W]."""
    fgr, pha = matted
    return torch.from_numpy(fgr).permute(0, 3, 1, 2), torch.from_numpy(pha)[:, None]


@pytest.fixture(scope="module")
def juggle(clips_dir: Path, matted: tuple) -> MediaInfo:
    """The clip, at the golden frames' size (they were matted from it scaled down)."""
    height, width = matted[1].shape[1:]
    return replace(probe(clips_dir / "05_default_juggle.mp4"), width=width, height=height)


@pytest.mark.parametrize("matrix", ["bt709", "bt2020nc", "smpte170m"])
def test_prores_planes_match_the_numpy_conversion(matted: tuple, tensors: tuple, matrix: str) -> None:
    planes = prores4444_planes(*tensors, colorspace=matrix).numpy()
    assert planes.dtype == np.uint16 and planes.shape == (FRAMES, 4, *matted[1].shape[1:])
    for t in range(FRAMES):
        expected = colour.rgb_to_ycbcr(matted[0][t], colorspace=matrix, color_range="tv", bit_depth=10)
        assert np.abs(planes[t, :3].astype(np.int32) - expected).max() <= 1
        assert np.abs(planes[t, 3].astype(np.int32) - alpha_codes(matted[1][t])).max() <= 1


def test_exr_halves_equal_the_writers(matted: tuple, tensors: tuple, juggle: MediaInfo, tmp_path: Path) -> None:
    writer = open_writer(OutputFormat.EXR, tmp_path, "juggle", juggle)
    halves = exr_planes(*tensors).numpy()
    for t in range(FRAMES):
        np.testing.assert_array_equal(halves[t], writer.prepare(matted[0][t], matted[1][t]))
    writer.abort()


@pytest.mark.parametrize("sixteen_bit", [False, True])
def test_png_codes_equal_the_writers(
    matted: tuple, tensors: tuple, juggle: MediaInfo, tmp_path: Path, sixteen_bit: bool
) -> None:
    writer = open_writer(OutputFormat.PNG, tmp_path, "juggle", juggle)
    writer.sixteen_bit = sixteen_bit
    rgba = png_rgba(*tensors, sixteen_bit=sixteen_bit).numpy()
    for t in range(FRAMES):
        np.testing.assert_array_equal(rgba[t], writer.prepare(matted[0][t], matted[1][t]))
    writer.abort()


def test_matte_luma_equals_the_alpha_writers(matted: tuple, tensors: tuple) -> None:
    luma = matte_luma(tensors[1]).numpy()
    for t in range(FRAMES):
        np.testing.assert_array_equal(luma[t], numpy_matte_luma(matted[1][t]))


def test_comp_planes_match_the_comp_writers(matted: tuple, tensors: tuple, juggle: MediaInfo, tmp_path: Path) -> None:
    writer = open_writer(OutputFormat.COMP, tmp_path, "juggle", juggle, background=parse_background("#3366cc"))
    background = torch.from_numpy(np.ascontiguousarray(writer.still_background.transpose(2, 0, 1)))
    y, cb, cr = (plane.numpy() for plane in comp_planes(*tensors, background, colorspace=writer.colour.matrix))
    for t in range(FRAMES):
        expected = writer.planes(matted[0][t], matted[1][t])
        for got, want in zip((y[t], cb[t], cr[t]), expected, strict=True):
            assert np.abs(got.astype(np.int32) - want).max() <= 1
    writer.abort()


def test_a_video_background_keeps_the_host_feed(juggle: MediaInfo, clips_dir: Path, tmp_path: Path) -> None:
    writer = open_writer(OutputFormat.COMP, tmp_path, "juggle", juggle,
                         background=parse_background(str(clips_dir / "01_dog.mp4")))  # fmt: skip
    fgr = torch.rand(2, 3, juggle.height, juggle.width)
    pha = torch.rand(2, 1, juggle.height, juggle.width)
    fgr_host, pha_host = device_feed(writer).convert(fgr, pha)
    assert fgr_host.dtype == torch.float32 and pha_host.shape == (2, juggle.height, juggle.width)
    writer.abort()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_frames_become_unit_floats_as_before(dtype: type) -> None:
    rng = np.random.default_rng(5)
    top = np.iinfo(dtype).max
    frames = [DecodedFrame(i, rng.integers(0, top, (6, 10, 3), dtype=dtype, endpoint=True)) for i in range(3)]
    (batch,) = integer_batches(frames, 3, pinned=False)
    assert batch.rgb.dtype == torch.from_numpy(frames[0].rgb).dtype  # integers cross to the device
    src = Transfers(torch.device("cpu")).upload(batch).src()
    stacked = np.stack([f.rgb for f in frames]).astype(np.int32)
    before = torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous().float().div_(float(top))
    assert torch.equal(src, before)
