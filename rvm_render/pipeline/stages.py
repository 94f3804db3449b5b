"""Decode, inference and encode run at the same time, joined by bounded queues.

Three kinds of stage share the work of one clip:

* one *decode* thread reads frames and stacks them into ``[T, 3, H, W]`` tensors in 0..1;
* the matting engine, as a chain of steps (:meth:`~rvm_render.engine.Matter.steps`): each step
  but the last on its own thread, the last on the calling thread, every one in frame order;
* one *encode* thread per deliverable writes every frame to its writer.

Queues are bounded, so at most a few batches are in flight whatever the clip length and
peak memory stays flat. The first error in any stage cancels the others and is re-raised
in the calling thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from rvm_render.media.reader import DecodedFrame
from rvm_render.media.writers import MatteWriter

log = logging.getLogger(__name__)

__all__ = ["FrameBatch", "MattedFrame", "Cancelled", "run_stages"]

T = TypeVar("T")
_POLL_S = 0.1


class Cancelled(Exception):
    """Raised inside a stage when another stage has failed."""


@dataclass(frozen=True, slots=True)
class FrameBatch:
    """Consecutive source frames as one tensor.

    Shape:
        src: [T, 3, H, W] float32 RGB 0..1
    """

    first_index: int
    src: torch.Tensor


@dataclass(frozen=True, slots=True)
class MattedFrame:
    """One frame of engine output, as arrays for the writers.

    Shape:
        fgr: [H, W, 3] float32 0..1 (straight foreground; a view of planar [3, H, W] memory)
        pha: [H, W] float32 0..1
    """

    index: int
    fgr: np.ndarray
    pha: np.ndarray


class _Channel(Generic[T]):
    """A bounded queue whose blocking calls give up once the run is cancelled."""

    _END = object()

    def __init__(self, capacity: int, cancelled: threading.Event) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=capacity)
        self._cancelled = cancelled

    def put(self, item: T) -> None:
        self._put(item)

    def close(self) -> None:
        self._put(self._END)

    def __iter__(self) -> Iterator[T]:
        while True:
            try:
                item = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if self._cancelled.is_set():
                    raise Cancelled from None
                continue
            if item is self._END:
                return
            yield item  # type: ignore[misc]

    def _put(self, item: object) -> None:
        while True:
            if self._cancelled.is_set():
                raise Cancelled
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue


def frame_batches(frames: Iterable[DecodedFrame], batch_frames: int) -> Iterator[FrameBatch]:
    """Stack consecutive decoded frames into float tensors of at most ``batch_frames``."""
    pending: list[DecodedFrame] = []
    for frame in frames:
        pending.append(frame)
        if len(pending) == batch_frames:
            yield _stacked(pending)
            pending = []
    if pending:
        yield _stacked(pending)


def _stacked(frames: list[DecodedFrame]) -> FrameBatch:
    rgb = np.stack([frame.rgb for frame in frames])
    scale = float(np.iinfo(rgb.dtype).max)
    if rgb.dtype == np.uint16:  # torch has no uint16 arithmetic on every build
        rgb = rgb.astype(np.int32)
    # Transposed to planar before the float conversion: the transposing copy then moves the
    # narrower integer samples, about half the cost of transposing float32.
    src = torch.from_numpy(rgb).permute(0, 3, 1, 2).contiguous().float().div_(scale)
    return FrameBatch(first_index=frames[0].index, src=src)


class _StageThread(threading.Thread):
    """A daemon thread that records its first exception and cancels the run."""

    def __init__(self, name: str, work: Callable[[], None], cancelled: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self._work = work
        self._cancelled = cancelled
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except Cancelled:
            pass
        except BaseException as err:  # handed to the calling thread
            self.error = err
            self._cancelled.set()


def run_stages(
    frames: Iterable[DecodedFrame],
    infer_steps: Sequence[Callable[[Any], Any]],
    writers: list[MatteWriter],
    *,
    batch_frames: int,
    queue_batches: int = 2,
    on_batch_done: Callable[[int], None] | None = None,
) -> int:
    """Decode, infer and encode one clip concurrently; return the number of frames written.

    Args:
        frames: Decoded source frames in order (iterated on the decode thread).
        infer_steps: The engine as a chain: the first step takes ``src [T, 3, H, W]``, each
            next one the previous one's result, and the last returns ``fgr [T, 3, H, W]`` and
            ``pha [T, 1, H, W]``, float32 on the CPU. Each step sees every batch in order.
        writers: Every selected deliverable; each gets every frame on its own thread.
        batch_frames: Frames per engine call.
        queue_batches: Batches each queue may hold; bounds memory.
        on_batch_done: Called on the calling thread with the frames finished by all writers.

    Raises:
        Whatever a stage raised first; the other stages are cancelled.
    """
    if not infer_steps:
        raise ValueError("infer_steps is empty")
    cancelled = threading.Event()
    inboxes: list[_Channel[tuple[int, Any]]] = [_Channel(queue_batches, cancelled) for _ in infer_steps]
    outboxes: list[_Channel[list[MattedFrame]]] = [_Channel(queue_batches, cancelled) for _ in writers]
    written = [0] * len(writers)

    def decode() -> None:
        for batch in frame_batches(frames, batch_frames):
            inboxes[0].put((batch.first_index, batch.src))
        inboxes[0].close()

    def infer(slot: int) -> Callable[[], None]:
        def step() -> None:
            for first_index, item in inboxes[slot]:
                inboxes[slot + 1].put((first_index, infer_steps[slot](item)))
            inboxes[slot + 1].close()

        return step

    def encoder(slot: int) -> Callable[[], None]:
        def encode() -> None:
            for matted in outboxes[slot]:
                for frame in matted:
                    writers[slot].write(frame.index, frame.fgr, frame.pha)
                written[slot] += len(matted)

        return encode

    threads = [_StageThread("rvm-decode", decode, cancelled)]
    threads += [_StageThread(f"rvm-infer-{slot}", infer(slot), cancelled) for slot in range(len(infer_steps) - 1)]
    threads += [_StageThread(f"rvm-encode-{slot}", encoder(slot), cancelled) for slot in range(len(writers))]
    for thread in threads:
        thread.start()
    try:
        inferred = 0
        for first_index, item in inboxes[-1]:
            fgr, pha = infer_steps[-1](item)
            matted = _matted_frames(first_index, fgr, pha)
            for outbox in outboxes:
                outbox.put(matted)
            inferred += len(matted)
            if on_batch_done is not None:
                on_batch_done(min(written, default=inferred))
        for outbox in outboxes:
            outbox.close()
    except Cancelled:
        pass
    except BaseException:
        cancelled.set()
        raise
    finally:
        for thread in threads:
            thread.join()
    for thread in threads:
        if thread.error is not None:
            raise thread.error
    return inferred


def _matted_frames(first_index: int, fgr: torch.Tensor, pha: torch.Tensor) -> list[MattedFrame]:
    # HWC views of the planar engine output, not copies: writers that work plane by plane
    # (Y'CbCr conversion, EXR channels) then read contiguous planes.
    fgr_hwc = fgr.permute(0, 2, 3, 1).numpy()
    pha_hw = pha[:, 0].contiguous().numpy()
    return [MattedFrame(index=first_index + t, fgr=fgr_hwc[t], pha=pha_hw[t]) for t in range(fgr_hwc.shape[0])]
