"""RecurrentState: list order, device moves, byte round trip."""

from __future__ import annotations

import pytest
import torch

from rvm_render.engine.state import RecurrentState
from rvm_render.errors import RvmRenderError


def _state() -> RecurrentState:
    return RecurrentState.from_list([torch.rand(1, c, 8 // s, 8 // s) for c, s in ((16, 1), (20, 2), (40, 4), (64, 8))])


def test_initial_is_all_none() -> None:
    assert RecurrentState.initial().as_list() == [None] * 4
    assert RecurrentState.initial().is_initial
    assert not _state().is_initial


def test_bytes_round_trip() -> None:
    state = _state()
    again = RecurrentState.from_bytes(state.to_bytes())
    for a, b in zip(state.as_list(), again.as_list()):
        assert a is not None and b is not None and torch.equal(a, b)
    assert RecurrentState.from_bytes(RecurrentState.initial().to_bytes()).is_initial


def test_half_precision_is_kept() -> None:
    state = _state().to("cpu", torch.float16)
    again = RecurrentState.from_bytes(state.to_bytes())
    assert all(t is not None and t.dtype == torch.float16 for t in again.as_list())


@pytest.mark.parametrize("data", [b"", b"not a state", torch.zeros(1).numpy().tobytes()])
def test_corrupt_bytes(data: bytes) -> None:
    with pytest.raises(RvmRenderError, match="recurrent state"):
        RecurrentState.from_bytes(data)
