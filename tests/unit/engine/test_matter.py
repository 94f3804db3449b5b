"""Matter: options, auto ratio, state carried across calls."""

from __future__ import annotations

import pytest
import torch

from rvm_render.engine.matter import EngineOptions, Matter, auto_downsample_ratio, preferred_batch_frames
from rvm_render.engine.state import RecurrentState
from rvm_render.errors import ConfigError
from rvm_render.model import MattingNetwork


@pytest.fixture(scope="module")
def model() -> MattingNetwork:
    torch.manual_seed(0)
    return MattingNetwork("mobilenetv3", "fast_guided_filter").eval()


@pytest.mark.parametrize(
    ("height", "width"),
    [(288, 512), (360, 640), (720, 1280), (1080, 1920), (2160, 3840), (1920, 1080), (6000, 17000), (90000, 1)],
)
def test_auto_ratio_puts_the_long_side_in_range(height: int, width: int) -> None:
    ratio = auto_downsample_ratio(height, width)
    long_side = max(height, width)
    if long_side <= 512:
        assert ratio == 1
    else:
        assert 256 <= ratio * long_side <= 512


def test_auto_ratio_follows_the_official_recommendations() -> None:
    # The official RVM README: 720p -> 0.375, 1080p -> 0.25, 4K -> 0.125 (each 480 px long side).
    for height, width in ((720, 1280), (1080, 1920), (2160, 3840)):
        assert auto_downsample_ratio(height, width) * width == 480


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"precision": "fp8"}, "precision"),
        ({"device": "gpu0"}, "device"),
        ({"downsample_ratio": 1.5}, "downsample_ratio"),
        ({"step_threads": 0}, "step_threads"),
        ({"network": "compiled"}, "network"),
    ],
)
def test_options_name_the_bad_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}:"):
        EngineOptions(**kwargs)


def test_fp16_needs_cuda(model: MattingNetwork) -> None:
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        Matter(model, EngineOptions(device="cpu", precision="fp16"))


def test_cuda_graphs_need_cuda(model: MattingNetwork) -> None:
    with pytest.raises(ConfigError, match="^network: 'cuda_graph' needs a CUDA device, not cpu; use eager or auto$"):
        Matter(model, EngineOptions(device="cpu", network="cuda_graph"))


def test_cpu_defaults(model: MattingNetwork) -> None:
    matter = Matter(model, EngineOptions(device="cpu"))
    assert (matter.device.type, matter.precision, matter.variant) == ("cpu", "fp32", "mobilenetv3")
    assert matter.network == "eager"
    assert matter.downsample_ratio_for(1080, 1920) == auto_downsample_ratio(1080, 1920)


def test_state_is_carried_across_calls(model: MattingNetwork) -> None:
    src = torch.rand(4, 3, 40, 56)
    one_call = Matter(model, EngineOptions(device="cpu", downsample_ratio=0.5))
    whole = one_call.matte(src)
    split = Matter(model, EngineOptions(device="cpu", downsample_ratio=0.5))
    first, second = split.matte(src[:2]), split.matte(src[2:])
    assert whole.fgr.shape == (4, 3, 40, 56) and whole.pha.shape == (4, 1, 40, 56)
    assert whole.pha.dtype == torch.float32 and whole.pha.device.type == "cpu"
    assert torch.equal(torch.cat([first.pha, second.pha]), whole.pha)
    assert torch.equal(torch.cat([first.fgr, second.fgr]), whole.fgr)


def test_reset_and_restore_state(model: MattingNetwork) -> None:
    src = torch.rand(3, 3, 32, 32)
    matter = Matter(model, EngineOptions(device="cpu", downsample_ratio=1.0))
    first = matter.matte(src[:1])
    saved = RecurrentState.from_bytes(matter.state.to_bytes())
    after = matter.matte(src[1:])
    matter.reset()
    assert matter.state.is_initial
    assert torch.equal(matter.matte(src[:1]).pha, first.pha)
    matter.state = saved
    assert torch.equal(matter.matte(src[1:]).pha, after.pha)


def test_frame_size_change_starts_a_new_state(model: MattingNetwork) -> None:
    matter = Matter(model, EngineOptions(device="cpu", downsample_ratio=1.0))
    matter.matte(torch.rand(1, 3, 32, 32))
    fresh = Matter(model, EngineOptions(device="cpu", downsample_ratio=1.0))
    other = torch.rand(1, 3, 48, 32)
    assert torch.equal(matter.matte(other).pha, fresh.matte(other).pha)


def test_bad_input_shape(model: MattingNetwork) -> None:
    with pytest.raises(ValueError, match=r"\[T, 3, H, W\]"):
        Matter(model, EngineOptions(device="cpu")).matte(torch.rand(3, 32, 32))


def test_preferred_batch_frames() -> None:
    assert preferred_batch_frames("cpu") == 1
    assert preferred_batch_frames("cuda:1") == 4  # named for a farm job; need not be present here
    assert preferred_batch_frames("auto") == (4 if torch.cuda.is_available() else 1)
    with pytest.raises(ConfigError, match="^device: unknown 'gpu0'"):
        preferred_batch_frames("gpu0")
