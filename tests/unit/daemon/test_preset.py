"""The daemon's presets: the warm start is a preset key like the others, checked where it is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from rvm_render.api.schemas import PresetIn
from rvm_render.daemon.config import Preset, load_config
from rvm_render.errors import ConfigError
from rvm_render.pipeline.render import DEFAULT_WARMUP_FRAMES

SHIPPED_CONFIG = Path(__file__).resolve().parents[3] / "config.yaml"


def test_the_shipped_config_documents_the_warm_start_at_its_default() -> None:
    text = SHIPPED_CONFIG.read_text()
    assert "#   warmup:" in text
    assert load_config(SHIPPED_CONFIG).default_preset.warmup == DEFAULT_WARMUP_FRAMES


def test_a_preset_takes_warmup_from_its_base_or_its_own_key() -> None:
    base = Preset.from_json({"warmup": 8}, "preset")
    assert base.warmup == 8 and base.to_json()["warmup"] == 8
    assert Preset.from_json({}, "watch[0]", base=base).warmup == 8
    assert Preset.from_json({"warmup": 0}, "watch[0]", base=base).warmup == 0
    assert Preset.from_json(PresetIn(warmup=16).overrides(), "preset", base=base).warmup == 16


@pytest.mark.parametrize("value", [-1, 2.5, "8", True])
def test_a_bad_warmup_names_its_key(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^watch\[1\]\.warmup: "):
        Preset.from_json({"warmup": value}, "watch[1]")


@pytest.mark.parametrize("value", [1e-9, 0.01, 0, 1.5])
def test_a_downsample_ratio_the_network_cannot_use_names_its_key(value: float) -> None:
    with pytest.raises(ConfigError, match=r"^preset\.downsample_ratio: .* from 0\.03125 to 1"):
        Preset.from_json(PresetIn(downsample_ratio=value).overrides(), "preset")
    assert Preset.from_json({"downsample_ratio": 1 / 32}, "preset").downsample_ratio == 1 / 32


def test_a_watch_folder_priority_out_of_range_names_its_key(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text("media_roots: [media]\nwatch:\n  - {path: media/in, kind: clip, output: media/out, "
                      "priority: 99999999999999999999999}\n")  # fmt: skip
    with pytest.raises(ConfigError, match=r"^watch\[0\]\.priority: .* from -1000000 to 1000000"):
        load_config(config)
