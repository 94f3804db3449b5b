"""Decode, inference and encode run at the same time, joined by bounded queues.

Three kinds of stage share the work of one clip:

* one *decode* thread reads frames, stacks them as integers and puts them on the engine's device
  as ``[T, 3, H, W]`` float tensors in 0..1 (:mod:`~rvm_render.pipeline.device_path`);
* the matting engine, as a chain of steps (:meth:`~rvm_render.engine.Matter.steps`): each step
  but the last on its own thread, the last on the calling thread, every one in frame order;
* one *encode* thread per deliverable writes every frame to its writer, as its feed says: float
  fgr and pha the writer converts, or a payload made on the engine's device.

Queues are bounded, so at most a few batches are in flight whatever the clip length and
peak memory stays flat. The first error in any stage cancels the others and is re-raised
in the calling thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import torch

from rvm_render.media.reader import DecodedFrame
from rvm_render.media.writers import MatteWriter
from rvm_render.pipeline.device_path import (
    HostPayloads,
    Transfers,
    UploadedBatch,
    WriterFeed,
    host_feed,
    integer_batches,
)

log = logging.getLogger(__name__)

__all__ = ["Cancelled", "run_stages"]

T = TypeVar("T")
_POLL_S = 0.1


class Cancelled(Exception):
    """Raised inside a stage when another stage has failed."""


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
    device: torch.device | None = None,
    feeds: Sequence[WriterFeed] | None = None,
) -> int:
    """Decode, infer and encode one clip concurrently; return the number of frames written.

    Args:
        frames: Decoded source frames in order (iterated on the decode thread).
        infer_steps: The engine as a chain: the first step takes ``src [T, 3, H, W]`` float 0..1
            on ``device``, each next one the previous one's result, and the last returns ``fgr
            [T, 3, H, W]`` and ``pha [T, 1, H, W]`` on ``device`` (or on the CPU). Each step sees
            every batch in order.
        writers: Every selected deliverable; each gets every frame on its own thread.
        batch_frames: Frames per engine call.
        queue_batches: Batches each queue may hold; bounds memory.
        on_batch_done: Called on the calling thread with the frames finished by all writers.
        device: Where the engine runs (default: the CPU); frames go there as integers
            (:class:`~rvm_render.pipeline.device_path.Transfers`).
        feeds: How each writer gets its frames (default: :func:`host_feed`, float fgr and pha).

    Raises:
        Whatever a stage raised first; the other stages are cancelled.
    """
    if not infer_steps:
        raise ValueError("infer_steps is empty")
    transfers = Transfers(device or torch.device("cpu"))
    feeds = list(feeds) if feeds is not None else [host_feed(writer) for writer in writers]
    cancelled = threading.Event()
    inboxes: list[_Channel[Any]] = [_Channel(queue_batches, cancelled) for _ in infer_steps]
    outboxes: list[_Channel[HostPayloads]] = [_Channel(queue_batches, cancelled) for _ in writers]
    written = [0] * len(writers)

    def decode() -> None:
        for batch in integer_batches(frames, batch_frames, pinned=transfers.pinned):
            inboxes[0].put(transfers.upload(batch))
        inboxes[0].close()

    def infer(slot: int) -> Callable[[], None]:
        def step() -> None:
            for first_index, item in _numbered(inboxes[slot]):
                inboxes[slot + 1].put((first_index, infer_steps[slot](item)))
            inboxes[slot + 1].close()

        return step

    def encoder(slot: int) -> Callable[[], None]:
        def encode() -> None:
            for payloads in outboxes[slot]:
                arrays = payloads.arrays(slot)
                for t in range(arrays[0].shape[0]):
                    feeds[slot].hand_over(payloads.first_index + t, tuple(array[t] for array in arrays))
                written[slot] += arrays[0].shape[0]

        return encode

    threads = [_StageThread("rvm-decode", decode, cancelled)]
    threads += [_StageThread(f"rvm-infer-{slot}", infer(slot), cancelled) for slot in range(len(infer_steps) - 1)]
    threads += [_StageThread(f"rvm-encode-{slot}", encoder(slot), cancelled) for slot in range(len(writers))]
    for thread in threads:
        thread.start()
    try:
        inferred = 0
        for first_index, item in _numbered(inboxes[-1]):
            fgr, pha = infer_steps[-1](item)
            payloads = transfers.download(first_index, _converted(feeds, fgr, pha))
            for outbox in outboxes:
                outbox.put(payloads)
            inferred += fgr.shape[0]
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


def _numbered(inbox: _Channel[Any]) -> Iterator[tuple[int, Any]]:
    """``(first_index, item)`` of each batch: an uploaded batch gives its float frames on this thread."""
    for entry in inbox:
        if isinstance(entry, UploadedBatch):
            yield entry.first_index, entry.src()
        else:
            yield entry


def _converted(feeds: Sequence[WriterFeed], fgr: torch.Tensor, pha: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """Each feed's payload of a batch; feeds that share a conversion (the host feed) share its result."""
    done: dict[int, tuple[torch.Tensor, ...]] = {}
    for feed in feeds:
        if id(feed.convert) not in done:
            done[id(feed.convert)] = feed.convert(fgr, pha)
    return [done[id(feed.convert)] for feed in feeds]
