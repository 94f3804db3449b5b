"""Find and read RVM weights: official ``.pth`` state_dicts and the published tfjs model.

Where weights come from, first match wins (:func:`resolve_weights_path`):

1. the ``weights`` argument (``--weights`` on the command line);
2. the ``RVM_RENDER_WEIGHTS`` environment variable;
3. key ``weights`` of the config file named by ``RVM_RENDER_CONFIG``, else ``./config.yaml``
   (a relative path is taken relative to the config file);
4. the user cache ``$XDG_CACHE_HOME/rvm_render/weights/`` (default ``~/.cache/...``):
   ``rvm_mobilenetv3.pth``, ``rvm_resnet50.pth``, then a tfjs model folder;
5. the weights shipped inside the package (:func:`packaged_weights_dir`): the published RVM
   MobileNetV3 TensorFlow.js model, so a fresh install runs with no set-up.

:func:`find_weights` also reports every place it looked (``rvm-render weights`` prints it).
Nothing is downloaded. Formats (:func:`read_weights`): an official RVM state_dict saved with
``torch.save`` (``rvm_mobilenetv3.pth``/``rvm_resnet50.pth``, optionally wrapped as
``{"state_dict": ...}``), read with ``weights_only=True``; or a TensorFlow.js graph model
folder / ``model.json`` (see :mod:`rvm_render.engine.tfjs`). The variant comes from the keys
(``backbone.conv1.weight`` -> resnet50, ``backbone.features.*`` -> mobilenetv3) and so does the
refiner (``refiner.box_filter.weight`` -> deep guided filter, none -> fast guided filter).
The lookup and :func:`identify_weights` of a tfjs model load no torch (``rvm-render weights``
starts at once); torch is imported by the functions that read tensors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from rvm_render.errors import ConfigError, WeightsError

if TYPE_CHECKING:
    from torch import Tensor

    from rvm_render.model import MattingNetwork

__all__ = [
    "LoadedWeights",
    "WeightsIdentity",
    "WeightsLookup",
    "WeightsPlace",
    "WEIGHTS_ENV",
    "CONFIG_ENV",
    "CACHE_CANDIDATES",
    "PACKAGED_WEIGHTS",
    "find_weights",
    "packaged_weights_dir",
    "resolve_weights_path",
    "read_weights",
    "identify_weights",
    "tfjs_model_json",
    "pth_to_state_dict",
    "weights_cache_dir",
    "check_variant",
    "network_for_weights",
]

log = logging.getLogger(__name__)

WEIGHTS_ENV = "RVM_RENDER_WEIGHTS"
CONFIG_ENV = "RVM_RENDER_CONFIG"
CACHE_CANDIDATES = ("rvm_mobilenetv3.pth", "rvm_resnet50.pth", "rvm_mobilenetv3_tfjs_uint8")
#: The model folder shipped in ``rvm_render/engine/default_weights/`` (with its PROVENANCE.md).
PACKAGED_WEIGHTS = "rvm_mobilenetv3_tfjs_uint8"
WEIGHTS_KINDS = "rvm_mobilenetv3.pth, rvm_resnet50.pth or a tfjs model.json folder"
FIX = f"pass {WEIGHTS_KINDS} with --weights or {WEIGHTS_ENV}"


@dataclass(frozen=True, slots=True)
class WeightsIdentity:
    """Which weights a file or folder holds: its digest, variant and refiner."""

    path: Path
    sha256: str
    variant: str
    refiner: str


@dataclass(frozen=True, slots=True, eq=False)
class LoadedWeights:
    """Weights read from disk, in the official state_dict layout."""

    path: Path
    sha256: str
    variant: str
    refiner: str
    state_dict: dict[str, Tensor]


def weights_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rvm_render/weights`` (``~/.cache/rvm_render/weights`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rvm_render" / "weights"


def _existing(path: Path, source: str, fix: str = FIX) -> Path:
    path = path.expanduser()
    if not path.exists():
        raise WeightsError(f"weights '{path}' (from {source}) not found; {fix}")
    return path


def _config_weights() -> tuple[Path | None, str, str]:
    """(weights path from the config file or None, where it looked, why it names none)."""
    named = os.environ.get(CONFIG_ENV)
    config = (Path(named).expanduser() if named else Path("config.yaml")).absolute()
    where = f"{config} key 'weights'"
    if not config.is_file():
        if named:
            raise ConfigError(f"{CONFIG_ENV}: config file '{config}' not found; fix the path or unset it")
        return None, where, "no config file"
    import yaml  # only needed when a config file exists

    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{config}: cannot read config ({type(err).__name__}); fix the YAML") from err
    value = data.get("weights") if isinstance(data, dict) else None
    if value is None:
        return None, where, "not set"
    if not isinstance(value, str):
        raise ConfigError(f"{config}: weights: expected a path, got {type(value).__name__}")
    path = Path(value).expanduser()
    return (path if path.is_absolute() else config.parent / path), where, ""


@dataclass(frozen=True, slots=True)
class WeightsPlace:
    """One place weights are looked for, in lookup order, and what it held."""

    name: str
    """``--weights``, ``$RVM_RENDER_WEIGHTS``, the config file's key, the user cache, the package."""
    finding: str
    """What was there: the path it names, or why it names none (``not set``, ``no config file``)."""
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class WeightsLookup:
    """The weights a run uses, where they came from, and every place looked at up to them."""

    path: Path
    places: tuple[WeightsPlace, ...]

    @property
    def source(self) -> str:
        """The name of the place that gave :attr:`path` (the last one looked at)."""
        return self.places[-1].name


def packaged_weights_dir() -> Path:
    """The published RVM MobileNetV3 tfjs model inside the installed package (``default_weights/``)."""
    return Path(str(resources.files("rvm_render.engine").joinpath("default_weights", PACKAGED_WEIGHTS)))


def find_weights(weights: str | os.PathLike[str] | None = None, *, given_as: str = "--weights") -> WeightsLookup:
    """The weights file or tfjs folder to use (argument, env, config, cache, package; see module doc).

    ``given_as`` names the setting the argument came from in errors (the daemon's config key).

    Raises:
        WeightsError: Weights named by the argument, the environment or the config do not
            exist, or the package's own weights are missing (a broken install).
        ConfigError: ``RVM_RENDER_CONFIG`` names a missing or unreadable config file.
    """
    places: list[WeightsPlace] = []

    def named(name: str, value: str | os.PathLike[str] | None, absent: str, fix: str = FIX) -> WeightsLookup | None:
        if value is None or str(value) == "":
            places.append(WeightsPlace(name, absent))
            return None
        path = _existing(Path(value), name, fix)
        places.append(WeightsPlace(name, str(path), path))
        return WeightsLookup(path, tuple(places))

    fix_given = FIX if given_as == "--weights" else f"point {given_as} at {WEIGHTS_KINDS}"
    found = named(given_as, weights, "not given", fix_given)
    found = found or named(WEIGHTS_ENV, os.environ.get(WEIGHTS_ENV), "not set")
    if found is not None:
        return found
    config_path, config_where, unset = _config_weights()
    found = named(config_where, config_path, unset)
    if found is not None:
        return found
    cache = weights_cache_dir()
    for name in CACHE_CANDIDATES:
        candidate = cache / name
        if candidate.is_file() or (candidate / "model.json").is_file():
            places.append(WeightsPlace(f"user cache {cache}/", str(candidate), candidate))
            return WeightsLookup(candidate, tuple(places))
    places.append(WeightsPlace(f"user cache {cache}/", f"none of {', '.join(CACHE_CANDIDATES)}"))
    packaged = packaged_weights_dir()
    if not (packaged / "model.json").is_file():
        raise WeightsError(
            f"no RVM weights found (looked at --weights, {WEIGHTS_ENV}, {config_where}, {cache}/) and the weights "
            f"shipped with rvm_render are missing from '{packaged}' (broken install: reinstall rvm-render); {FIX}"
        )
    places.append(WeightsPlace("shipped with rvm_render", str(packaged), packaged))
    return WeightsLookup(packaged, tuple(places))


def resolve_weights_path(weights: str | os.PathLike[str] | None = None, *, given_as: str = "--weights") -> Path:
    """The weights file or tfjs folder to use: :func:`find_weights` without the report.

    Raises:
        WeightsError, ConfigError: as :func:`find_weights`.
    """
    return find_weights(weights, given_as=given_as).path


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _is_tfjs(path: Path) -> bool:
    return path.is_dir() or path.suffix == ".json"


def tfjs_model_json(path: str | os.PathLike[str]) -> Path:
    """The ``model.json`` of a tfjs model given the file or its folder.

    Raises:
        WeightsError: No ``model.json`` there.
    """
    path = Path(path)
    model_json = path / "model.json" if path.is_dir() else path
    if not model_json.is_file():
        raise WeightsError(f"cannot load tfjs weights '{path}': no model.json there; pass the tfjs model folder")
    return model_json


def _tfjs_identity(path: Path) -> WeightsIdentity:
    """A tfjs model (always the published MobileNetV3 with the fast guided filter): digest of model.json and shards."""
    model_json = tfjs_model_json(path)
    try:
        groups = json.loads(model_json.read_text(encoding="utf-8"))["weightsManifest"]
        shards = [model_json.parent / shard for group in groups for shard in group["paths"]]
        return WeightsIdentity(path, _sha256([model_json, *shards]), "mobilenetv3", "fast_guided_filter")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise WeightsError(f"cannot read tfjs weights '{model_json}': {err}; {FIX}") from err


def identify_weights(path: str | os.PathLike[str]) -> WeightsIdentity:
    """Which weights ``path`` holds; a tfjs model without loading torch, a ``.pth`` by reading it.

    Raises:
        WeightsError: as :func:`read_weights`.
    """
    path = Path(path).expanduser()
    if path.exists() and _is_tfjs(path):
        return _tfjs_identity(path)
    loaded = read_weights(path)
    return WeightsIdentity(loaded.path, loaded.sha256, loaded.variant, loaded.refiner)


def read_weights(path: str | os.PathLike[str]) -> LoadedWeights:
    """Read official ``.pth`` weights or a tfjs model into the official state_dict layout.

    Raises:
        WeightsError: Missing file, not a checkpoint, or not an RVM layout.
    """
    import torch

    from rvm_render.engine.tfjs import tfjs_to_state_dict

    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError(f"weights '{path}' not found; {FIX}")
    if _is_tfjs(path):
        identity = _tfjs_identity(path)
        state_dict = tfjs_to_state_dict(tfjs_model_json(path))
        return LoadedWeights(path, identity.sha256, identity.variant, identity.refiner, state_dict)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many unrelated types for foreign files
        raise WeightsError(
            f"cannot load weights '{path}': not a PyTorch checkpoint ({type(err).__name__}); {FIX}"
        ) from err
    state_dict, variant, refiner = pth_to_state_dict(checkpoint, path)
    return LoadedWeights(path, _sha256([path]), variant, refiner, state_dict)


def pth_to_state_dict(checkpoint: object, path: Path) -> tuple[dict[str, Tensor], str, str]:
    """Validate an official RVM checkpoint; return (state_dict, variant, refiner).

    Accepts a plain state_dict or one wrapped as ``{"state_dict": ...}``. Keys and shapes must
    match ``MattingNetwork(variant, refiner)`` exactly (``num_batches_tracked`` may be absent).

    Raises:
        WeightsError: Not a state_dict, or not an RVM layout.
    """
    import torch
    from torch import Tensor

    from rvm_render.model import MattingNetwork

    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in checkpoint.items()
    ):
        raise WeightsError(f"cannot load weights '{path}': not a state_dict of tensors; {FIX}")
    state: dict[str, Tensor] = dict(checkpoint)
    if not any(k.startswith("decoder.") for k in state):
        raise WeightsError(f"cannot load weights '{path}': no 'decoder.*' keys (not an RVM checkpoint); {FIX}")
    if "backbone.conv1.weight" in state:
        variant = "resnet50"
    elif any(k.startswith("backbone.features.") for k in state):
        variant = "mobilenetv3"
    else:
        raise WeightsError(f"cannot load weights '{path}': unknown backbone layout (not an RVM checkpoint); {FIX}")
    refiner = "deep_guided_filter" if "refiner.box_filter.weight" in state else "fast_guided_filter"
    expected = MattingNetwork(variant, refiner).state_dict()
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise WeightsError(
            f"cannot load weights '{path}': keys do not match RVM {variant} ({detail}, "
            f"{len(missing)} missing, {len(unexpected)} unexpected); {FIX}"
        )
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise WeightsError(
                f"cannot load weights '{path}': {key} has shape {list(state[key].shape)}, "
                f"RVM {variant} needs {list(value.shape)}; {FIX}"
            )
    return {k: state[k] for k in expected}, variant, refiner


def check_variant(loaded: LoadedWeights, variant: str | None) -> None:
    """Refuse weights of another variant than ``variant`` (None: any).

    Raises:
        ConfigError: ``variant`` is not a variant; WeightsError: the weights are another one.
    """
    from rvm_render.model import VARIANTS

    if variant is not None and variant not in VARIANTS:
        raise ConfigError(f"variant: unknown {variant!r} (expected one of {', '.join(VARIANTS)})")
    if variant is not None and variant != loaded.variant:
        raise WeightsError(
            f"weights '{loaded.path}' are RVM {loaded.variant}, but {variant} was asked for; "
            f"pass rvm_{variant}.pth with --weights or drop the variant"
        )


def network_for_weights(
    loaded: LoadedWeights, variant: str | None = None, refiner: str | None = None
) -> MattingNetwork:
    """A MattingNetwork (eval, float32, CPU) holding ``loaded``.

    Args:
        variant: Required variant, or None to accept what the weights are.
        refiner: Refiner to build, or None for the one the weights carry. The deep guided
            filter needs its weights; the fast guided filter has none and can always be used.

    Raises:
        WeightsError: The weights are another variant, or lack the requested refiner.
    """
    from rvm_render.model import REFINERS, MattingNetwork

    check_variant(loaded, variant)
    if refiner is not None and refiner not in REFINERS:
        raise ConfigError(f"refiner: unknown {refiner!r} (expected one of {', '.join(REFINERS)})")
    refiner = refiner or loaded.refiner
    state = loaded.state_dict
    if refiner != loaded.refiner:
        if refiner == "deep_guided_filter":
            raise WeightsError(
                f"weights '{loaded.path}' have no deep guided filter refiner; use fast_guided_filter "
                "or pass an official rvm_*.pth"
            )
        state = {k: v for k, v in state.items() if not k.startswith("refiner.")}
    model = MattingNetwork(loaded.variant, refiner)
    model.load_state_dict(state, strict=True)
    return model.eval()
