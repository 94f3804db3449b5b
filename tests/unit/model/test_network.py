"""MattingNetwork: official key layout, recurrence, clip vs frame calls, refiner use."""

from __future__ import annotations

import pytest
import torch

from rvm_render.model import MattingNetwork
from rvm_render.model.matting import downsampled


@pytest.fixture(scope="module")
def network() -> MattingNetwork:
    torch.manual_seed(0)
    model = MattingNetwork("mobilenetv3", "deep_guided_filter")
    for module in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def test_official_top_level_names() -> None:
    keys = MattingNetwork("mobilenetv3", "deep_guided_filter").state_dict()
    prefixes = {k.split(".")[0] for k in keys}
    assert prefixes == {"backbone", "aspp", "decoder", "project_mat", "project_seg", "refiner"}
    for key in (
        "aspp.aspp1.0.weight",
        "aspp.aspp2.1.weight",
        "decoder.decode4.gru.ih.0.weight",
        "decoder.decode3.conv.1.running_var",
        "decoder.decode0.conv.3.weight",
        "project_mat.conv.bias",
        "refiner.box_filter.weight",
        "refiner.conv.6.bias",
    ):
        assert key in keys
    assert not any(k.startswith("refiner.") for k in MattingNetwork("mobilenetv3", "fast_guided_filter").state_dict())


def test_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        MattingNetwork("mobilenetv2")


def test_outputs_and_state_shapes(network: MattingNetwork) -> None:
    src = torch.rand(2, 3, 64, 96)
    with torch.inference_mode():
        fgr, pha, r1, r2, r3, r4 = network(src, downsample_ratio=0.5)
    assert fgr.shape == (2, 3, 64, 96) and pha.shape == (2, 1, 64, 96)
    assert [r.shape for r in (r1, r2, r3, r4)] == [(2, 16, 16, 24), (2, 20, 8, 12), (2, 40, 4, 6), (2, 64, 2, 3)]
    assert 0 <= float(pha.min()) and float(pha.max()) <= 1
    assert 0 <= float(fgr.min()) and float(fgr.max()) <= 1


def test_none_state_is_zero_state(network: MattingNetwork) -> None:
    src = torch.rand(1, 3, 48, 64)
    with torch.inference_mode():
        _, _, *rec = network(src)
        first = network(src)
        zeros = network(src, *[torch.zeros_like(r) for r in rec])
    for a, b in zip(first, zeros):
        assert torch.equal(a, b)


@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_clip_call_equals_frame_by_frame(network: MattingNetwork, ratio: float) -> None:
    clip = torch.rand(1, 4, 3, 48, 64)
    with torch.inference_mode():
        clip_out = network(clip, downsample_ratio=ratio)
        rec: list[torch.Tensor | None] = [None] * 4
        frames = []
        for t in range(4):
            fgr, pha, *rec = network(clip[:, t], *rec, downsample_ratio=ratio)
            frames.append((fgr, pha))
    for t, (fgr, pha) in enumerate(frames):
        assert torch.allclose(clip_out[0][:, t], fgr, atol=1e-5)
        assert torch.allclose(clip_out[1][:, t], pha, atol=1e-5)
    for clip_r, frame_r in zip(clip_out[2:], rec):
        assert torch.allclose(clip_r, frame_r, atol=1e-5)


def test_refiner_is_skipped_at_ratio_one(network: MattingNetwork, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("refiner called at ratio 1")

    monkeypatch.setattr(network.refiner, "forward", refuse)
    with torch.inference_mode():
        network(torch.rand(1, 3, 32, 32), downsample_ratio=1.0)
    with pytest.raises(AssertionError, match="refiner called"):
        with torch.inference_mode():
            network(torch.rand(1, 3, 32, 32), downsample_ratio=0.5)


def test_segmentation_pass(network: MattingNetwork) -> None:
    with torch.inference_mode():
        seg, *rec = network(torch.rand(1, 3, 32, 48), segmentation_pass=True)
    assert seg.shape == (1, 1, 32, 48) and len(rec) == 4


def test_downsampled_uses_the_ratio_not_the_rounded_size() -> None:
    src = torch.rand(1, 3, 10, 30)
    out = downsampled(src, 0.375)
    assert out.shape[-2:] == (3, 11)  # floor(10 * 0.375), floor(30 * 0.375)
    expected = torch.nn.functional.interpolate(
        src, scale_factor=0.375, mode="bilinear", align_corners=False, recompute_scale_factor=False
    )
    assert torch.equal(out, expected)
    assert torch.equal(downsampled(src[None], 0.375)[0], expected)
