"""The ONNX Runtime backend: same outputs and state handling as the torch backend."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rvm_render.engine import matter as matter_module
from rvm_render.engine import onnx_backend
from rvm_render.engine.matter import EngineOptions, Matter
from rvm_render.engine.state import RecurrentState
from rvm_render.errors import ConfigError
from rvm_render.model import MattingNetwork

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model() -> MattingNetwork:
    torch.manual_seed(0)
    return MattingNetwork("mobilenetv3", "fast_guided_filter").eval()


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def _matter(model: MattingNetwork, backend: str, ratio: float = 0.5) -> Matter:
    return Matter(model, EngineOptions(device="cpu", downsample_ratio=ratio, backend=backend))  # type: ignore[arg-type]


def test_auto_picks_onnxruntime_on_cpu(model: MattingNetwork) -> None:
    assert _matter(model, "auto").backend == "onnxruntime"


def test_matches_torch_backend_across_calls(model: MattingNetwork) -> None:
    src = torch.rand(5, 3, 48, 64)
    expected = _matter(model, "torch").matte(src)
    ort = _matter(model, "onnxruntime")
    batches = [ort.matte(src[:2]), ort.matte(src[2:])]
    for name in ("fgr", "pha"):
        actual = torch.cat([getattr(b, name) for b in batches])
        assert actual.shape == getattr(expected, name).shape
        torch.testing.assert_close(actual, getattr(expected, name), atol=1e-4, rtol=0)


def test_state_moves_between_backends(model: MattingNetwork) -> None:
    src = torch.rand(3, 3, 48, 64)
    torch_matter, ort = _matter(model, "torch"), _matter(model, "onnxruntime")
    torch_matter.matte(src[:2])
    ort.state = RecurrentState.from_bytes(torch_matter.state.to_bytes())
    torch.testing.assert_close(ort.matte(src[2:]).pha, torch_matter.matte(src[2:]).pha, atol=1e-4, rtol=0)
    ort.reset()
    assert ort.state.is_initial


def test_export_is_cached(model: MattingNetwork, cache_in_tmp: Path) -> None:
    _matter(model, "onnxruntime", ratio=1.0).matte(torch.rand(1, 3, 32, 32))
    exports = sorted(onnx_backend.onnx_cache_dir().glob("*.onnx"))
    assert [p.name.split("-")[-2] for p in exports] == ["features", "recurrent"]
    assert all(p.is_relative_to(cache_in_tmp) for p in exports)
    before = [p.stat().st_mtime_ns for p in exports]
    _matter(model, "onnxruntime", ratio=1.0).matte(torch.rand(1, 3, 32, 32))
    assert [p.stat().st_mtime_ns for p in exports] == before


def test_decoder_convolutions_over_concatenations_are_split(model: MattingNetwork) -> None:
    onnx = pytest.importorskip("onnx")
    onnx_backend.RecurrentSession(model, 48, 64, threads=1)
    (export,) = onnx_backend.onnx_cache_dir().glob("*-recurrent-*.onnx")
    graph = onnx.load(str(export)).graph
    producers = {output: node.op_type for node in graph.node for output in node.output}
    weights = {tensor.name: tensor.dims for tensor in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    dense = [node for node in convs if all(a.i == 1 for a in node.attribute if a.name == "group")]
    inputs = [(producers.get(node.input[0]), weights[node.input[1]][1]) for node in dense]
    # decode3..decode0 convolve [upsampled, skip, image] (171, 107, 59, 35 channels); each is now
    # one convolution per concatenated input, and no convolution reads a misaligned concatenation.
    assert sum(1 for _, channels in inputs if channels == 3) == 4
    assert not [c for op, c in inputs if op == "Concat" and c % onnx_backend.NCHWC_CHANNEL_MULTIPLE]


def test_missing_onnxruntime(model: MattingNetwork, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_backend, "onnxruntime_available", lambda: False)
    monkeypatch.setattr(matter_module, "onnxruntime_available", lambda: False)
    assert _matter(model, "auto").backend == "torch"
    with pytest.raises(ConfigError, match="^backend: 'onnxruntime' needs the onnxruntime"):
        _matter(model, "onnxruntime")


def test_unknown_backend() -> None:
    with pytest.raises(ConfigError, match="^backend:"):
        EngineOptions(backend="tensorrt")  # type: ignore[arg-type]


def test_decoder_upsamples_read_identity_convolutions(model: MattingNetwork) -> None:
    onnx = pytest.importorskip("onnx")
    onnx_backend.RecurrentSession(model, 48, 64, threads=1)
    (export,) = onnx_backend.onnx_cache_dir().glob("*-recurrent-*.onnx")
    graph = onnx.load(str(export)).graph
    producers = {output: node for node in graph.node for output in node.output}
    weights = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in graph.initializer}
    resizes = [node for node in graph.node if node.op_type == "Resize"]
    assert len(resizes) == 4  # decode3..decode0 upsample 2x
    for resize in resizes:
        identity = producers[resize.input[0]]
        assert identity.op_type == "Conv" and (weights[identity.input[1]] == 1).all() and len(identity.input) == 2


def test_step_threads(model: MattingNetwork) -> None:
    src = torch.rand(2, 3, 48, 64)
    options = EngineOptions(device="cpu", downsample_ratio=0.5, backend="onnxruntime", step_threads=2)
    two = Matter(model, options).matte(src)
    torch.testing.assert_close(two.pha, _matter(model, "onnxruntime").matte(src).pha, atol=1e-5, rtol=0)
