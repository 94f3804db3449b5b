"""Shared fixtures: the read-only shared data folder and the weights in it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_ENV = "RVM_RENDER_SHARED"


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
