"""The engine on a CUDA device in fp16 (``--precision auto`` there), against the official golden outputs,
and the GPU data path (payloads made on the GPU) against the same torch code on the CPU and the host path.

These run only where a CUDA device is present (a GPU test machine); everywhere else they are
reported as skipped, naming why.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from rvm_render.engine import EngineOptions, open_matter
from rvm_render.media.reader import DecodedFrame
from rvm_render.media.writers import OutputFormat
from rvm_render.pipeline.device_path import (
    Transfers,
    comp_planes,
    exr_planes,
    integer_batches,
    matte_luma,
    png_rgba,
    prores4444_planes,
)
from rvm_render.pipeline.render import RenderRequest, RenderSettings, render_clip
from support.cli import matte
from support.frames import exr_alphas, planes_of, short_clip

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


# --- the GPU data path ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frames_on_cpu(golden: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Real frames as the engine leaves them: the golden source as fgr, its golden matte as pha."""
    fgr = torch.from_numpy(golden["src"][:8]).permute(0, 3, 1, 2).float() / 255
    pha = torch.from_numpy(golden["pha_dsr05"][:8].astype(np.float32))[:, None]
    return fgr, pha


@pytest.mark.parametrize("matrix", ["bt709", "bt2020nc"])
def test_gpu_prores_planes_match_the_cpu_conversion(frames_on_cpu: tuple, matrix: str) -> None:
    cpu = prores4444_planes(*frames_on_cpu, colorspace=matrix).numpy().astype(np.int32)
    gpu = prores4444_planes(*(t.cuda() for t in frames_on_cpu), colorspace=matrix).cpu().numpy().astype(np.int32)
    assert np.abs(cpu - gpu).max() <= 1


def test_gpu_half_floats_and_integer_planes_match_the_cpu_conversions(frames_on_cpu: tuple) -> None:
    on_gpu = tuple(t.cuda() for t in frames_on_cpu)
    cpu_half, gpu_half = exr_planes(*frames_on_cpu).numpy(), exr_planes(*on_gpu).cpu().numpy()
    half_step = np.spacing(np.abs(cpu_half)).astype(np.float32)  # one half-float rounding step
    assert (np.abs(cpu_half.astype(np.float32) - gpu_half.astype(np.float32)) <= half_step).all()
    for sixteen_bit in (False, True):
        cpu, gpu = png_rgba(*frames_on_cpu, sixteen_bit=sixteen_bit), png_rgba(*on_gpu, sixteen_bit=sixteen_bit)
        assert np.abs(cpu.numpy().astype(np.int32) - gpu.cpu().numpy().astype(np.int32)).max() <= 1
    assert np.abs(matte_luma(frames_on_cpu[1]).numpy().astype(np.int32)
                  - matte_luma(on_gpu[1]).cpu().numpy().astype(np.int32)).max() <= 1  # fmt: skip
    background = torch.tensor([0.2, 0.4, 0.8])[:, None, None].expand(3, *frames_on_cpu[0].shape[-2:]).contiguous()
    cpu_comp = comp_planes(*frames_on_cpu, background, colorspace="bt709")
    gpu_comp = comp_planes(*on_gpu, background.cuda(), colorspace="bt709")
    for a, b in zip(cpu_comp, gpu_comp, strict=True):
        assert np.abs(a.numpy().astype(np.int32) - b.cpu().numpy().astype(np.int32)).max() <= 1


def test_integer_upload_equals_the_cpu_float_conversion(golden: dict[str, np.ndarray]) -> None:
    frames = [DecodedFrame(index, rgb) for index, rgb in enumerate(golden["src"][:4])]
    (batch,) = integer_batches(frames, 4, pinned=True)
    assert batch.rgb.is_pinned() and batch.rgb.dtype == torch.uint8
    on_gpu = Transfers(torch.device("cuda")).upload(batch).src()
    (cpu_batch,) = integer_batches(frames, 4, pinned=False)
    on_cpu = Transfers(torch.device("cpu")).upload(cpu_batch).src()
    assert on_gpu.is_cuda
    # CUDA divides by a scalar as a multiplication by its reciprocal: within one float32 ulp of the CPU's division
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=2**-23, atol=0)


def test_cuda_graph_replays_match_eager_calls(golden: dict[str, np.ndarray], tfjs_weights: Path) -> None:
    src = torch.from_numpy(golden["src"]).permute(0, 3, 1, 2).float().div(255).cuda()
    phas = {}
    for network in ("eager", "cuda_graph"):
        matter = open_matter(tfjs_weights, EngineOptions(device="cuda", downsample_ratio=0.5, network=network))
        (step,) = matter.steps(on_device=True)
        phas[network] = torch.cat([step(batch).pha.float() for batch in src.split(4)])
        assert matter.network == network
    assert (phas["eager"] - phas["cuda_graph"]).abs().max().item() <= 1e-3
    assert len(matter._graphs) == 1 and None not in matter._graphs.values()  # captured once, for [4, 360, 640]
    step(src[:3])  # a shape met once (a clip's short last batch) runs eagerly: no capture for it
    assert list(matter._graphs) == [(4, 360, 640, 0.5)]


def test_cuda_bring_up_overlaps_the_weights_read(tfjs_weights: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="rvm_render.engine.matter"):
        open_matter(tfjs_weights, EngineOptions(device="cuda"))
    ready = [r.getMessage() for r in caplog.records if r.getMessage().startswith("engine ready on cuda")]
    assert len(ready) == 1 and "cuDNN and allocator up in" in ready[0], ready


def test_device_path_render_matches_the_host_path_on_cuda(tmp_path: Path, clips_dir: Path, tfjs_weights: Path) -> None:
    clip = short_clip(clips_dir / "05_default_juggle.mp4", tmp_path / "juggle.mp4", 24)
    formats = (OutputFormat.PRORES4444, OutputFormat.EXR, OutputFormat.ALPHA, OutputFormat.PNG, OutputFormat.COMP)
    for on_device in (False, True):
        matter = open_matter(tfjs_weights, EngineOptions(device="cuda", downsample_ratio=0.375, network="eager"))
        settings = RenderSettings(formats=formats, batch_frames=4, convert_on_device=on_device)
        assert render_clip(RenderRequest(clip, tmp_path / str(on_device)), settings, matter).frames == 24
    for name in ("juggle_matte.mov", "juggle_alpha.mov"):
        host, device = ([planes_of(f) for f in av.open(str(tmp_path / str(key) / name)).decode(video=0)]
                        for key in (False, True))  # fmt: skip
        assert len(host) == len(device) == 24
        for host_planes, device_planes in zip(host, device, strict=True):
            assert max(np.abs(a - b).max() for a, b in zip(host_planes, device_planes, strict=True)) <= 1
    pattern = "juggle_matte.%06d.exr"
    host_alpha = exr_alphas(tmp_path / "False" / pattern, range(24)).astype(np.float32)
    device_alpha = exr_alphas(tmp_path / "True" / pattern, range(24)).astype(np.float32)
    assert np.abs(host_alpha - device_alpha).max() <= np.spacing(np.float16(1.0))
