"""The model against reference outputs of the official RVM implementation (testdata/golden).

The golden file holds 16 frames of a real clip and the official PyTorch MobileNetV3 model's
``pha``/``fgr`` (float16) at downsample ratios 1 and 0.5, recurrent state carried across all
frames (see testdata/golden/README.md). Bounds: max |d| <= 2e-3 and mean |d| <= 1e-4.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rvm_render.engine import EngineOptions, Matter, tfjs_to_state_dict
from rvm_render.model import MattingNetwork
from rvm_render.model.matting import downsampled
from rvm_render.model.refiner import DeepGuidedFilterRefiner

MAX_ABS = 2e-3
MEAN_ABS = 1e-4


@pytest.fixture(scope="module")
def golden(shared_dir: Path) -> dict[str, np.ndarray]:
    with np.load(shared_dir / "testdata" / "golden" / "juggle_golden.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def src(golden: dict[str, np.ndarray]) -> torch.Tensor:
    """The golden frames as ``[T, 3, H, W]`` float32 0..1 (golden README step 3)."""
    return torch.from_numpy(golden["src"]).permute(0, 3, 1, 2).float() / 255


@pytest.fixture(scope="module")
def model(tfjs_weights: Path) -> MattingNetwork:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    network = MattingNetwork("mobilenetv3", "fast_guided_filter")
    network.load_state_dict(tfjs_to_state_dict(tfjs_weights), strict=True)
    return network.eval()


def _ratio_key(ratio: float) -> str:
    return "dsr1" if ratio == 1 else "dsr" + f"{ratio:g}".replace(".", "")


def _golden_outputs(golden: dict[str, np.ndarray], ratio: float) -> tuple[np.ndarray, np.ndarray]:
    key = _ratio_key(ratio)
    pha = golden[f"pha_{key}"].astype(np.float32)
    fgr = golden[f"fgr_{key}"].astype(np.float32).transpose(0, 3, 1, 2)
    return fgr, pha


def _frame_by_frame(model: MattingNetwork, src: torch.Tensor, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    rec: list[torch.Tensor | None] = [None] * 4
    fgrs, phas = [], []
    with torch.inference_mode():
        for frame in src:
            fgr, pha, *rec = model(frame[None], *rec, downsample_ratio=ratio)
            fgrs.append(fgr[0].numpy())
            phas.append(pha[0, 0].numpy())
    return np.stack(fgrs), np.stack(phas)


def _assert_close(name: str, actual: np.ndarray, expected: np.ndarray) -> None:
    diff = np.abs(actual - expected)
    assert diff.max() <= MAX_ABS and diff.mean() <= MEAN_ABS, (
        f"{name}: max |d| {diff.max():.3g} (bound {MAX_ABS}), mean |d| {diff.mean():.3g} (bound {MEAN_ABS})"
    )


@pytest.fixture(scope="module")
def frame_by_frame(model: MattingNetwork, src: torch.Tensor, golden: dict[str, np.ndarray]) -> dict[float, tuple]:
    return {float(r): _frame_by_frame(model, src, float(r)) for r in golden["downsample_ratios"]}


def test_golden_lists_the_ratios_it_holds(golden: dict[str, np.ndarray]) -> None:
    for ratio in golden["downsample_ratios"]:
        assert f"pha_{_ratio_key(float(ratio))}" in golden


@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_frame_by_frame_matches_golden(
    frame_by_frame: dict[float, tuple], golden: dict[str, np.ndarray], ratio: float
) -> None:
    fgr, pha = frame_by_frame[ratio]
    golden_fgr, golden_pha = _golden_outputs(golden, ratio)
    _assert_close(f"pha at ratio {ratio}", pha, golden_pha)
    _assert_close(f"fgr at ratio {ratio}", fgr, golden_fgr)


def test_clip_call_matches_frame_by_frame(
    model: MattingNetwork, src: torch.Tensor, frame_by_frame: dict[float, tuple], golden: dict[str, np.ndarray]
) -> None:
    ratio = 0.5
    rec: list[torch.Tensor | None] = [None] * 4
    fgrs, phas = [], []
    with torch.inference_mode():
        for clip in src.split(8):
            fgr, pha, *rec = model(clip[None], *rec, downsample_ratio=ratio)
            fgrs.append(fgr[0].numpy())
            phas.append(pha[0, :, 0].numpy())
    fgr, pha = np.concatenate(fgrs), np.concatenate(phas)
    ref_fgr, ref_pha = frame_by_frame[ratio]
    # Same maths; only float rounding differs (batched convs), amplified a little by the
    # guided filter where the guide is flat.
    for name, actual, expected in (("pha", pha, ref_pha), ("fgr", fgr, ref_fgr)):
        diff = np.abs(actual - expected)
        assert diff.max() <= 1e-3 and diff.mean() <= 1e-6, f"{name}: max {diff.max():.3g}, mean {diff.mean():.3g}"
    golden_fgr, golden_pha = _golden_outputs(golden, ratio)
    _assert_close("pha of [1, T] clips", pha, golden_pha)


@pytest.mark.parametrize("backend", ["auto", "torch"])
@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_matter_defaults_match_golden(
    model: MattingNetwork,
    src: torch.Tensor,
    golden: dict[str, np.ndarray],
    ratio: float,
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine as the product runs it on CPU (auto: ONNX Runtime; torch: folded BatchNorm,
    channels-last), batches of 4."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # ONNX exports
    matter = Matter(model, EngineOptions(device="cpu", downsample_ratio=ratio, backend=backend))  # type: ignore[arg-type]
    batches = [matter.matte(batch) for batch in src.split(4)]
    fgr = torch.cat([b.fgr for b in batches]).numpy()
    pha = torch.cat([b.pha for b in batches])[:, 0].numpy()
    golden_fgr, golden_pha = _golden_outputs(golden, ratio)
    _assert_close(f"Matter pha at ratio {ratio}", pha, golden_pha)
    _assert_close(f"Matter fgr at ratio {ratio}", fgr, golden_fgr)


# --- half precision -----------------------------------------------------------------------------------------

HALF_REFINER_MAX_ABS = 2e-3


@pytest.fixture(scope="module")
def low_res_outputs(model: MattingNetwork, src: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """Per golden frame, what the refiner is given at ratio 0.5: (src, src_sm, fgr_residual, pha, hid).

    The network's own outputs are rounded to half, as a half-precision network produces them.
    """
    rec: list[torch.Tensor | None] = [None] * 4
    outputs = []
    with torch.inference_mode():
        for frame in src:
            src_sm = downsampled(frame[None], 0.5)
            fgr_residual, pha, hid, *rec = model.recurrent(src_sm, *model.features(src_sm), *rec)
            outputs.append((frame[None], src_sm, *(t.half() for t in (fgr_residual, pha, hid))))
    return outputs


def _refined(refiner: torch.nn.Module, inputs: tuple[torch.Tensor, ...], dtype: torch.dtype) -> np.ndarray:
    """``refiner`` in ``dtype`` on the same input values; fgr and pha stacked, float32."""
    with torch.inference_mode():
        fgr, pha = refiner.to(dtype)(*(t.half().to(dtype) for t in inputs))
    refiner.float()
    assert fgr.dtype == pha.dtype == dtype
    return torch.cat([fgr, pha], dim=1).clamp(0, 1).float().numpy()


def test_fast_guided_filter_in_half_matches_float32(
    model: MattingNetwork, low_res_outputs: list[tuple[torch.Tensor, ...]]
) -> None:
    """Same input values, refiner in half vs float32: only output rounding may differ (statistics in fp32)."""
    worst = max(
        np.abs(_refined(model.refiner, inputs, torch.float16) - _refined(model.refiner, inputs, torch.float32)).max()
        for inputs in low_res_outputs
    )
    assert worst <= HALF_REFINER_MAX_ABS, f"max |d| {worst:.3g} (bound {HALF_REFINER_MAX_ABS})"


def test_deep_guided_filter_statistics_stay_float32_in_half(
    low_res_outputs: list[tuple[torch.Tensor, ...]],
) -> None:
    """What the Deep Guided Filter's learned convs see (covariance, variance) is the float32 statistic."""
    torch.manual_seed(0)
    refiner = DeepGuidedFilterRefiner().eval()
    seen: dict[torch.dtype, list[torch.Tensor]] = {torch.float16: [], torch.float32: []}
    hook = refiner.conv[0].register_forward_hook(lambda module, args, out: seen[args[0].dtype].append(args[0]))
    try:
        for inputs in low_res_outputs[:4]:
            for dtype in seen:
                _refined(refiner, inputs, dtype)
    finally:
        hook.remove()
    for half, full in zip(seen[torch.float16], seen[torch.float32], strict=True):
        stats_half, stats_full = half[:, :8].float(), full[:, :8]
        # float32 statistics rounded once to half: relative error 2^-11, absolute 2^-24 near zero
        assert torch.all((stats_half - stats_full).abs() <= stats_full.abs() * 2**-10 + 2**-23)


@pytest.mark.parametrize("frames_dtype", [torch.float16, torch.float32])
def test_half_network_end_to_end_stays_near_float32(
    model: MattingNetwork, src: torch.Tensor, frame_by_frame: dict[float, tuple], frames_dtype: torch.dtype
) -> None:
    """The whole network in half precision (as on CUDA, here on the CPU), state carried over the golden frames.

    Half frames are the official call contract (``model.half()(src.half())``); float32 frames are what
    the engine gives a half network.
    """
    half = MattingNetwork("mobilenetv3", "fast_guided_filter")
    half.load_state_dict(model.state_dict())
    half = half.half().eval()
    rec: list[torch.Tensor | None] = [None] * 4
    phas = []
    with torch.inference_mode():
        for frame in src:
            _, pha, *rec = half(frame[None].to(frames_dtype), *rec, downsample_ratio=0.5)
            assert pha.dtype == frames_dtype
            phas.append(pha[0, 0].float().numpy())
    diff = np.abs(np.stack(phas) - frame_by_frame[0.5][1])
    assert diff.mean() <= 1e-4 and diff.max() <= 2e-2, f"max |d| {diff.max():.3g}, mean {diff.mean():.3g}"
