"""tfjs -> official state_dict: complete, exact BatchNorm identity, and clear failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from rvm_render.engine.tfjs import read_tfjs_tensors, tfjs_to_state_dict
from rvm_render.errors import WeightsError
from rvm_render.model import MattingNetwork


@pytest.fixture(scope="module")
def state(tfjs_weights: Path) -> dict[str, torch.Tensor]:
    return tfjs_to_state_dict(tfjs_weights)


def test_fills_every_official_key(state: dict[str, torch.Tensor]) -> None:
    expected = MattingNetwork("mobilenetv3", "fast_guided_filter").state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert state[key].shape == value.shape and state[key].dtype == value.dtype, key
    assert not state["project_seg.conv.weight"].any()  # no segmentation head in the tfjs file


def test_loads_strictly(state: dict[str, torch.Tensor]) -> None:
    MattingNetwork("mobilenetv3", "fast_guided_filter").load_state_dict(state, strict=True)


def test_folded_batchnorm_is_an_exact_identity_plus_bias(state: dict[str, torch.Tensor]) -> None:
    model = MattingNetwork("mobilenetv3", "fast_guided_filter")
    model.load_state_dict(state)
    for name in ("backbone.features.0.1", "aspp.aspp1.1", "decoder.decode0.conv.1"):
        bn = model.get_submodule(name).eval()
        x = torch.randn(2, bn.num_features, 3, 4)
        assert torch.equal(bn(x), x + bn.bias.view(1, -1, 1, 1)), name


def test_unfolded_batchnorms_hold_scale_and_offset(tfjs_weights: Path, state: dict[str, torch.Tensor]) -> None:
    tensors, _ = read_tfjs_tensors(tfjs_weights)
    scaled = sorted(name for name in tensors if name.endswith("FusedBatchNormV3/Scaled"))
    assert len(scaled) == 3
    dilated_bn_weights = [state[f"backbone.features.{i}.block.1.1.weight"] for i in (13, 14, 15)]
    for name in scaled:
        value = torch.from_numpy(tensors[name].value)
        assert any(torch.equal(value, w) for w in dilated_bn_weights)


def test_every_manifest_entry_is_read(tfjs_weights: Path) -> None:
    tensors, _ = read_tfjs_tensors(tfjs_weights)
    manifest = json.loads((tfjs_weights / "model.json").read_text())["weightsManifest"]
    assert len(tensors) == sum(len(group["weights"]) for group in manifest)


def test_model_json_path_works_too(tfjs_weights: Path, state: dict[str, torch.Tensor]) -> None:
    other = tfjs_to_state_dict(tfjs_weights / "model.json")
    assert all(torch.equal(other[k], v) for k, v in state.items())


def test_missing_model_json(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no model.json"):
        tfjs_to_state_dict(tmp_path)


def test_truncated_shard(tfjs_weights: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tfjs"
    shutil.copytree(tfjs_weights, copy)
    shard = next(copy.glob("*.bin"))
    shard.chmod(0o644)
    shard.write_bytes(shard.read_bytes()[:-1000])
    with pytest.raises(WeightsError, match="shard"):
        tfjs_to_state_dict(copy)


def test_unused_tensor_is_named(tfjs_weights: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tfjs"
    copy.mkdir()
    manifest = json.loads((tfjs_weights / "model.json").read_text())
    group = manifest["weightsManifest"][0]
    group["weights"].append({"name": "extra/kernel", "shape": [64], "dtype": "float32"})
    shard = tfjs_weights / group["paths"][0]
    (copy / group["paths"][0]).write_bytes(shard.read_bytes() + bytes(4 * 64))
    (copy / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="'extra/kernel'.*not used"):
        tfjs_to_state_dict(copy)
