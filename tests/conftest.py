"""Shared fixtures: the read-only shared data folder and the weights in it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_ENV = "RVM_RENDER_SHARED"


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep the engine's caches (exported ONNX graphs) out of the user's cache dir.

    Set in the environment so subprocesses (the installed ``rvm-render``, workers) share it.
    """
    cache = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    yield cache
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared data folder named by ``RVM_RENDER_SHARED`` (set in .ci/run)."""
    value = os.environ.get(SHARED_ENV)
    if not value:
        pytest.fail(f"{SHARED_ENV} is not set: point it at the shared data folder (see .ci/run)")
    path = Path(value).resolve()
    if not (path / "testdata").is_dir():
        pytest.fail(f"{SHARED_ENV}={value} has no testdata/ folder")
    return path


@pytest.fixture(scope="session")
def tfjs_weights(shared_dir: Path) -> Path:
    """The published RVM MobileNetV3 TensorFlow.js graph model folder."""
    return shared_dir / "models" / "rvm_mobilenetv3_tfjs_uint8"


@pytest.fixture(scope="session")
def clips_dir(shared_dir: Path) -> Path:
    return shared_dir / "testdata" / "clips"
