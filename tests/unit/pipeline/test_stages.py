"""The decode/infer/encode stages: order, batching, bounded memory and error hand-over."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from rvm_render.media.reader import DecodedFrame
from rvm_render.pipeline.device_path import Transfers, integer_batches
from rvm_render.pipeline.stages import run_stages


def _frames(count: int, dtype: type = np.uint8) -> Iterator[DecodedFrame]:
    rng = np.random.default_rng(3)
    top = np.iinfo(dtype).max
    for index in range(count):
        yield DecodedFrame(index=index, rgb=rng.integers(0, top, (6, 8, 3), dtype=dtype, endpoint=True))


def _mean_matte(src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A real computation standing in for the engine: alpha = per-pixel mean of RGB."""
    return src.clone(), src.mean(dim=1, keepdim=True)


class RecordingWriter:
    """Keeps what it is given; optionally fails at one frame."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.frames: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.fail_at = fail_at
        self.thread_names: set[str] = set()

    def write(self, frame_index: int, fgr: np.ndarray, pha: np.ndarray) -> None:
        if frame_index == self.fail_at:
            raise OSError(f"disk full at frame {frame_index}")
        self.thread_names.add(threading.current_thread().name)
        self.frames.append((frame_index, fgr.copy(), pha.copy()))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_batches_scale_to_unit_range(dtype: type) -> None:
    frames = list(_frames(5, dtype))
    transfers = Transfers(torch.device("cpu"))
    batches = [transfers.upload(batch) for batch in integer_batches(frames, batch_frames=2, pinned=False)]
    assert [b.first_index for b in batches] == [0, 2, 4]
    assert [b.src().shape[0] for b in batches] == [2, 2, 1]
    expected = frames[3].rgb.astype(np.float64) / np.iinfo(dtype).max
    np.testing.assert_allclose(batches[1].src()[1].permute(1, 2, 0).numpy(), expected, atol=1e-6)


def test_every_writer_gets_every_frame_in_order_on_its_own_thread() -> None:
    frames = list(_frames(11))
    writers = [RecordingWriter(), RecordingWriter()]
    done: list[int] = []
    count = run_stages(iter(frames), [_mean_matte], writers, batch_frames=4, on_batch_done=done.append)
    assert count == 11
    for writer in writers:
        assert [index for index, _, _ in writer.frames] == list(range(11))
        expected_pha = frames[7].rgb.astype(np.float32).mean(axis=2) / 255
        np.testing.assert_allclose(writer.frames[7][2], expected_pha, atol=1e-6)
        assert writer.frames[7][1].shape == (6, 8, 3)
        assert writer.thread_names and "MainThread" not in writer.thread_names
    assert done == sorted(done) and done[-1] <= 11


def test_writer_failure_cancels_the_run_and_is_raised() -> None:
    writers = [RecordingWriter(), RecordingWriter(fail_at=5)]
    with pytest.raises(OSError, match="disk full at frame 5"):
        run_stages(_frames(200), [_mean_matte], writers, batch_frames=2)
    assert len(writers[0].frames) < 200


def test_decode_failure_is_raised_in_the_caller() -> None:
    def broken() -> Iterator[DecodedFrame]:
        yield from _frames(3)
        raise ValueError("corrupt packet at frame 3")

    with pytest.raises(ValueError, match="corrupt packet"):
        run_stages(broken(), [_mean_matte], [RecordingWriter()], batch_frames=2)


def test_queues_bound_frames_in_flight() -> None:
    decoded: list[int] = []
    written: list[int] = []

    def counted() -> Iterator[DecodedFrame]:
        for frame in _frames(60):
            decoded.append(frame.index)
            yield frame

    class SlowWriter(RecordingWriter):
        def write(self, frame_index: int, fgr: np.ndarray, pha: np.ndarray) -> None:
            # Two queues of queue_batches each, plus one batch held by each of the three stages.
            in_flight = len(decoded) - len(written)
            assert in_flight <= (2 * 2 + 3) * 3, in_flight
            written.append(frame_index)

    run_stages(counted(), [_mean_matte], [SlowWriter()], batch_frames=3, queue_batches=2)
    assert written == list(range(60))


def test_infer_steps_run_in_order_on_their_own_threads() -> None:
    step_threads: list[set[str]] = [set(), set()]
    seen_firsts: list[float] = []

    def brighten(src: torch.Tensor) -> torch.Tensor:
        step_threads[0].add(threading.current_thread().name)
        seen_firsts.append(float(src[0, 0, 0, 0]))
        return src * 0.5

    def matte_half(src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        step_threads[1].add(threading.current_thread().name)
        return _mean_matte(src)

    frames = list(_frames(9))
    writer = RecordingWriter()
    assert run_stages(iter(frames), [brighten, matte_half], [writer], batch_frames=2) == 9
    assert [index for index, _, _ in writer.frames] == list(range(9))
    np.testing.assert_allclose(writer.frames[8][2], frames[8].rgb.astype(np.float32).mean(axis=2) / 510, atol=1e-6)
    assert seen_firsts == pytest.approx([frames[i].rgb[0, 0, 0] / 255 for i in range(0, 9, 2)])
    assert step_threads[0] == {"rvm-infer-0"} and step_threads[1] == {"MainThread"}


def test_infer_step_failure_is_raised_in_the_caller() -> None:
    def failing(src: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("out of memory in step 0")

    with pytest.raises(RuntimeError, match="out of memory in step 0"):
        run_stages(_frames(20), [failing, _mean_matte], [RecordingWriter()], batch_frames=2)
