"""RecurrentState: the ConvGRU hidden states r1..r4 that RVM carries from frame to frame.

RVM (Lin et al., WACV 2022) keeps one hidden state per decoder scale: ``r1`` at 1/2, ``r2`` at
1/4, ``r3`` at 1/8 and ``r4`` at 1/16 of the downsampled frame. ``None`` everywhere means
"first frame" (the model starts from zeros). ``to_bytes``/``from_bytes`` let checkpoints store
the state between segments.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import torch
from torch import Tensor

from rvm_render.errors import RvmRenderError

__all__ = ["RecurrentState"]

_NAMES = ("r1", "r2", "r3", "r4")


@dataclass(frozen=True, slots=True, eq=False)
class RecurrentState:
    """Hidden states ``r1..r4`` (``[B, C, h, w]`` each), or all None before the first frame."""

    r1: Tensor | None = None
    r2: Tensor | None = None
    r3: Tensor | None = None
    r4: Tensor | None = None

    @classmethod
    def initial(cls) -> RecurrentState:
        """The state before the first frame (all None: the model starts from zeros)."""
        return cls()

    @classmethod
    def from_list(cls, tensors: list[Tensor | None] | tuple[Tensor | None, ...]) -> RecurrentState:
        """Build from the model's ``[r1, r2, r3, r4]`` outputs."""
        if len(tensors) != 4:
            raise ValueError(f"expected 4 recurrent tensors, got {len(tensors)}")
        return cls(*tensors)

    @property
    def is_initial(self) -> bool:
        """True before the first frame."""
        return all(t is None for t in self.as_list())

    def as_list(self) -> list[Tensor | None]:
        """``[r1, r2, r3, r4]``, as the model takes them."""
        return [self.r1, self.r2, self.r3, self.r4]

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> RecurrentState:
        """The same state on ``device`` (and in ``dtype`` if given)."""
        return RecurrentState(*(None if t is None else t.to(device=device, dtype=dtype) for t in self.as_list()))

    def to_bytes(self) -> bytes:
        """Serialise (CPU copies, dtype kept) for a checkpoint; read back with :meth:`from_bytes`."""
        buffer = io.BytesIO()
        payload = {
            name: None if t is None else t.detach().cpu().contiguous() for name, t in zip(_NAMES, self.as_list())
        }
        torch.save(payload, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> RecurrentState:
        """Read a state written by :meth:`to_bytes` (CPU tensors).

        Raises:
            RvmRenderError: The bytes are not a serialised RecurrentState.
        """
        try:
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for bad input
            raise RvmRenderError(
                f"recurrent state bytes are corrupt ({type(err).__name__}); re-run the segment"
            ) from err
        if not isinstance(payload, dict) or set(payload) != set(_NAMES):
            raise RvmRenderError("recurrent state bytes hold no r1..r4; re-run the segment")
        values = [payload[name] for name in _NAMES]
        if not all(v is None or isinstance(v, Tensor) for v in values):
            raise RvmRenderError("recurrent state bytes hold non-tensor values; re-run the segment")
        return cls(*values)
