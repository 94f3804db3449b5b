"""Weights on disk -> model: official .pth layout, tfjs folder, lookup order and errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from rvm_render.engine import (
    EngineOptions,
    load_model,
    open_matter,
    open_planning_matter,
    read_weights,
    resolve_weights_path,
    tfjs_to_state_dict,
)
from rvm_render.engine.weights import CONFIG_ENV, WEIGHTS_ENV, find_weights, packaged_weights_dir
from rvm_render.errors import WeightsError
from rvm_render.model import MattingNetwork


@pytest.fixture(autouse=True)
def _no_ambient_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Lookups see only what each test sets up (no user env, config or cache)."""
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def tfjs_state(tfjs_weights: Path) -> dict[str, torch.Tensor]:
    return tfjs_to_state_dict(tfjs_weights)


@pytest.fixture(scope="module")
def frames(shared_dir: Path) -> torch.Tensor:
    with np.load(shared_dir / "testdata" / "golden" / "juggle_golden.npz") as data:
        src = data["src"][:3]
    return torch.from_numpy(src).permute(0, 3, 1, 2).float() / 255


def _run(model: torch.nn.Module, frames: torch.Tensor, ratio: float) -> list[torch.Tensor]:
    rec: list[torch.Tensor | None] = [None] * 4
    phas = []
    with torch.inference_mode():
        for frame in frames:
            fgr, pha, *rec = model(frame[None], *rec, downsample_ratio=ratio)
            phas += [fgr, pha]
    return phas


def test_official_pth_matches_tfjs_model(
    tfjs_weights: Path, tfjs_state: dict[str, torch.Tensor], frames: torch.Tensor, tmp_path: Path
) -> None:
    pth = tmp_path / "rvm_mobilenetv3.pth"
    torch.save(tfjs_state, pth)
    from_pth = load_model(pth, device="cpu")
    from_tfjs = load_model(tfjs_weights, device="cpu")
    assert from_pth.variant == "mobilenetv3" and from_pth.refiner_name == "fast_guided_filter"
    for a, b in zip(_run(from_pth, frames, 0.5), _run(from_tfjs, frames, 0.5)):
        assert torch.equal(a, b)


def test_wrapped_state_dict_is_accepted(tfjs_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    pth = tmp_path / "wrapped.pth"
    torch.save({"state_dict": tfjs_state, "epoch": 3}, pth)
    loaded = read_weights(pth)
    assert loaded.variant == "mobilenetv3"
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in tfjs_state.items())


def test_resnet50_deep_guided_filter_is_detected(tmp_path: Path) -> None:
    torch.manual_seed(0)
    pth = tmp_path / "rvm_resnet50.pth"
    torch.save(MattingNetwork("resnet50", "deep_guided_filter").state_dict(), pth)
    loaded = read_weights(pth)
    assert (loaded.variant, loaded.refiner) == ("resnet50", "deep_guided_filter")
    model = load_model(pth, variant="resnet50", device="cpu")
    src = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        fgr, pha, *rec = model(src, downsample_ratio=0.5)
    assert fgr.shape == src.shape and pha.shape == (1, 1, 64, 96)
    assert [r.shape[1] for r in rec] == [16, 32, 64, 128]


def test_variant_mismatch_is_refused(tfjs_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    pth = tmp_path / "rvm_mobilenetv3.pth"
    torch.save(tfjs_state, pth)
    with pytest.raises(WeightsError, match="mobilenetv3, but resnet50 was asked for"):
        load_model(pth, variant="resnet50", device="cpu")


def test_tfjs_has_no_deep_guided_filter(tfjs_weights: Path) -> None:
    with pytest.raises(WeightsError, match="no deep guided filter"):
        load_model(tfjs_weights, refiner="deep_guided_filter", device="cpu")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsError, match="nope.pth.*not found"):
        read_weights(missing)
    with pytest.raises(WeightsError, match="nope.pth"):
        load_model(missing)


def test_corrupt_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint") as info:
        read_weights(corrupt)
    assert "\n" not in str(info.value)


def test_foreign_state_dict_is_not_rvm(tmp_path: Path) -> None:
    foreign = tmp_path / "classifier.pth"
    torch.save(torch.nn.Linear(4, 2).state_dict(), foreign)
    with pytest.raises(WeightsError, match="not an RVM checkpoint.*--weights or RVM_RENDER_WEIGHTS"):
        read_weights(foreign)


def test_env_variable_names_the_weights(tfjs_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(tfjs_weights))
    assert resolve_weights_path(None) == tfjs_weights
    matter = open_matter()
    assert matter.variant == "mobilenetv3"
    assert matter.weights_sha256 == read_weights(tfjs_weights).sha256


def test_argument_beats_env(tfjs_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "missing.pth"))
    assert resolve_weights_path(tfjs_weights / "model.json") == tfjs_weights / "model.json"
    with pytest.raises(WeightsError, match=f"missing.pth' \\(from {WEIGHTS_ENV}\\) not found"):
        resolve_weights_path(None)


def test_config_file_weights_are_relative_to_it(tfjs_weights: Path, tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    os.symlink(tfjs_weights, tmp_path / "models" / "rvm")
    (tmp_path / "config.yaml").write_text("weights: models/rvm\n", encoding="utf-8")
    assert resolve_weights_path(None) == tmp_path / "models" / "rvm"


def test_cache_dir_is_searched_last(tfjs_weights: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "rvm_render" / "weights"
    cache.mkdir(parents=True)
    os.symlink(tfjs_weights, cache / "rvm_mobilenetv3_tfjs_uint8")
    assert resolve_weights_path(None) == cache / "rvm_mobilenetv3_tfjs_uint8"


def test_with_nothing_configured_the_packaged_weights_are_used(tmp_path: Path) -> None:
    lookup = find_weights(None)
    assert lookup.path == packaged_weights_dir() and lookup.source == "shipped with rvm_render"
    names = [place.name for place in lookup.places]
    assert names[:2] == ["--weights", WEIGHTS_ENV] and "config.yaml" in names[2]
    assert str(tmp_path / "cache" / "rvm_render" / "weights") in names[3]
    assert [place.path for place in lookup.places[:-1]] == [None] * 4


def test_packaged_weights_are_the_published_model_bit_for_bit(tfjs_weights: Path, tfjs_state: dict) -> None:
    packaged = packaged_weights_dir()
    for name in ("model.json", "group1-shard1of1.bin"):
        assert (packaged / name).read_bytes() == (tfjs_weights / name).read_bytes(), name
    loaded = read_weights(packaged)
    assert loaded.sha256 == read_weights(tfjs_weights).sha256
    assert loaded.state_dict.keys() == tfjs_state.keys()
    assert all(torch.equal(loaded.state_dict[key], tfjs_state[key]) for key in tfjs_state)


def test_packaged_weights_provenance_names_the_shard_digest() -> None:
    import hashlib

    packaged = packaged_weights_dir()
    note = (packaged / "PROVENANCE.md").read_text(encoding="utf-8")
    for name in ("model.json", "group1-shard1of1.bin"):
        assert hashlib.sha256((packaged / name).read_bytes()).hexdigest() in note, name
    assert "GPL-3.0" in note and "PeterL1n/RobustVideoMatting" in note


def test_a_broken_install_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the package's own weights (a broken install) and nothing else: one line, every place named."""
    from rvm_render.engine import weights

    monkeypatch.setattr(weights, "packaged_weights_dir", lambda: tmp_path / "missing")
    with pytest.raises(WeightsError) as info:
        resolve_weights_path(None)
    message = str(info.value)
    assert "\n" not in message and "reinstall" in message
    for place in ("--weights", WEIGHTS_ENV, "config.yaml", str(tmp_path / "cache" / "rvm_render" / "weights")):
        assert place in message


def test_weights_command_says_which_weights_and_why(
    tfjs_weights: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rvm_render.cli.main import main

    monkeypatch.setenv(WEIGHTS_ENV, str(tfjs_weights))
    assert main(["weights"]) == 0
    report = capsys.readouterr().out
    lines = report.splitlines()
    assert lines[0] == f"weights: {tfjs_weights}" and read_weights(tfjs_weights).sha256 in lines[1]
    (used,) = [line for line in lines if line.endswith("<- used")]
    assert WEIGHTS_ENV in used and str(tfjs_weights) in used
    assert any("--weights" in line and "not given" in line for line in lines)


def test_a_planning_engine_has_the_weights_identity_and_refuses_another_variant(tfjs_weights: Path) -> None:
    """What farm export and the daemon over Ray plan with: the same digest and variant as the engine that mattes."""
    planning = open_planning_matter(tfjs_weights, EngineOptions(device="cpu"), variant="mobilenetv3")
    matting = open_matter(tfjs_weights, EngineOptions(device="cpu"))
    assert (planning.weights_sha256, planning.variant) == (matting.weights_sha256, matting.variant)
    with pytest.raises(WeightsError, match="are RVM mobilenetv3, but resnet50 was asked for"):
        open_planning_matter(tfjs_weights, variant="resnet50")
