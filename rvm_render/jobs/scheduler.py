"""Local scheduler: the segments of planned renders run by worker processes, one per device.

Workers: one per CUDA device (``torch.cuda.device_count()``), or CPU workers (one by default;
more with ``workers=N``, the machine's cores split between them as torch threads). Each worker
is a real process (``multiprocessing`` *spawn* context: no forked CUDA or OpenMP state; a
script calling :func:`run_segments_locally` needs the ``if __name__ == "__main__":`` guard)
that opens its :class:`~rvm_render.engine.Matter` once and renders segment after segment with
:func:`rvm_render.jobs.runner.render_segment`.

Units of work are *chains* (:func:`rvm_render.jobs.segments.segment_chains`): a chain's
segments hand the recurrent state on, so one worker renders a whole chain, in order. Chains of
one clip (every segment of a parallel plan, every shot of a sequential one) and chains of other
clips are independent: they wait in one queue, longest first, and every worker takes the next
one when it is free. Finished segments (a done record in the work dir) are skipped, so running
the same work dirs again resumes them.

Errors: the first failing segment stops the run; the other workers finish the segment they are
on (its checkpoint stays valid) and exit, and :func:`run_segments_locally` raises with the
segment, the work dir and the worker named. Ctrl-C (``KeyboardInterrupt`` in the caller)
interrupts every worker's segment (its outputs are aborted, nothing half-written is kept), waits
for them to exit and re-raises.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rvm_render.engine.matter import EngineOptions, Matter, open_matter
from rvm_render.engine.weights import resolve_weights_path
from rvm_render.errors import ConfigError, JobError, RvmRenderError
from rvm_render.jobs.checkpoint import CompletedSegment, RenderSpec, WorkDir
from rvm_render.jobs.runner import render_segment
from rvm_render.jobs.segments import Segment, segment_chains
from rvm_render.pipeline.progress import ProgressCallback, ProgressEvent

__all__ = [
    "Chain",
    "MatterSpec",
    "RenderedSegment",
    "WorkerSlot",
    "local_worker_slots",
    "frames_total_and_resumed",
    "pending_chains",
    "run_segments_locally",
    "segment_error",
]

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0
"""How long an interrupted worker may take to abort its segment before it is terminated."""
_POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class MatterSpec:
    """How a worker opens its Matter: the same weights and options everywhere, its own device.

    Build it with :meth:`resolved` in the submitting process, so every worker (and every Ray
    actor) reads the same weights file whatever its environment says.
    """

    weights: Path
    options: EngineOptions = EngineOptions()
    variant: str | None = None
    refiner: str | None = None

    @classmethod
    def resolved(
        cls,
        weights: str | os.PathLike[str] | None = None,
        options: EngineOptions | None = None,
        *,
        variant: str | None = None,
        refiner: str | None = None,
    ) -> MatterSpec:
        """Find the weights now (argument, $RVM_RENDER_WEIGHTS, config, cache).

        Raises:
            WeightsError: no weights found.
        """
        return cls(resolve_weights_path(weights).resolve(), options or EngineOptions(), variant, refiner)

    @classmethod
    def for_plan(cls, spec: RenderSpec, weights: str | os.PathLike[str] | None = None) -> MatterSpec:
        """The engine a work dir's plan asks for (weights path, device, precision, ratio, variant).

        Args:
            spec: ``WorkDir.plan.spec``.
            weights: the weights as seen from here; default the plan's path, then the usual lookup.
        """
        options = EngineOptions(device=spec.device, precision=spec.precision,  # type: ignore[arg-type]
                                downsample_ratio=spec.downsample_ratio)
        return cls.resolved(weights or spec.weights_path, options, variant=spec.variant)

    def open(self, device: str | None = None) -> Matter:
        """Open the Matter, on ``device`` if given (else ``options.device``)."""
        options = self.options if device is None else dataclasses.replace(self.options, device=device)
        return open_matter(self.weights, options, variant=self.variant, refiner=self.refiner)


@dataclass(frozen=True, slots=True)
class WorkerSlot:
    """One worker: the device it renders on and its torch CPU threads (None: torch's default)."""

    device: str
    threads: int | None = None

    def __str__(self) -> str:
        return self.device if self.threads is None else f"{self.device}, {self.threads} threads"


@dataclass(frozen=True, slots=True)
class Chain:
    """Segments of one work dir that must run in this order on one worker."""

    work_dir: Path
    indices: tuple[int, ...]
    frames: int


def local_worker_slots(workers: int | None = None, device: str = "auto") -> list[WorkerSlot]:
    """The workers of this machine: one per CUDA device, else CPU workers sharing the cores.

    Args:
        workers: number of workers. With CUDA: at most the device count (default: all devices).
            On the CPU (``device="cpu"``, or ``"auto"`` without CUDA): default 1; N workers
            split ``os.cpu_count()`` cores into N torch thread pools.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` (all devices) or ``"cuda:N"`` (that one).

    Raises:
        ConfigError: ``workers`` < 1, more CUDA workers than devices, or CUDA not available.
    """
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise ConfigError(f"--workers: must be >= 1, got {workers!r}")
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: CUDA is not available; use --device cpu or auto")
        if ":" in device:
            if workers not in (None, 1):
                raise ConfigError(f"--workers {workers} with --device {device}: one device has one worker; "
                                  f"use --device cuda for all devices")
            return [WorkerSlot(device)]
        count = torch.cuda.device_count()
        if workers is not None and workers > count:
            raise ConfigError(f"--workers {workers}: only {count} CUDA device(s); one worker per device")
        return [WorkerSlot(f"cuda:{i}") for i in range(workers or count)]
    if device not in ("auto", "cpu"):
        raise ConfigError(f"--device: unknown {device!r} (expected auto, cpu, cuda or cuda:N)")
    count = workers or 1
    cores = os.cpu_count() or 1
    threads = max(1, cores // count)
    return [WorkerSlot("cpu", threads if count > 1 else None) for _ in range(count)]


def frames_total_and_resumed(work_dirs: Sequence[WorkDir]) -> tuple[int, int]:
    """Frames the work dirs' plans cover, and how many of them segments done before this run hold
    (a resumed render's, an extended render's earlier frames): progress counts those as done."""
    total = sum(segment.frames for work_dir in work_dirs for segment in work_dir.plan.segments)
    pending = sum(work_dir.plan.segment(i).frames for work_dir in work_dirs for i in work_dir.pending_segments())
    return total, total - pending


def pending_chains(work_dirs: Iterable[WorkDir]) -> list[Chain]:
    """Unfinished segments of every work dir as chains, longest (most frames) first.

    A segment already done is left out of its chain; a chain with nothing left is dropped.
    Ties keep the work dirs' order and the chains' order within each.
    """
    chains: list[Chain] = []
    for work_dir in work_dirs:
        done = set(work_dir.completed_segments())
        for chain in segment_chains(work_dir.plan.segments):
            todo = [segment for segment in chain if segment.index not in done]
            if todo:
                frames = sum(_frames_matted(s) for s in todo)
                chains.append(Chain(work_dir.path, tuple(s.index for s in todo), frames))
    return sorted(chains, key=lambda chain: -chain.frames)


def _bound_progress(report: Callable[[int, ProgressEvent], None], index: int) -> ProgressCallback:
    def forward(event: ProgressEvent) -> None:
        report(index, event)

    return forward


# --- worker process -----------------------------------------------------------------------


_interrupted = False
"""Set in a worker by its first SIGINT: whatever the segment raises next is the interruption."""


def _interrupt_once(signum: int, frame: object) -> None:
    """First SIGINT: interrupt the segment; later ones are ignored so its abort can finish."""
    global _interrupted
    _interrupted = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _worker_main(
    worker: int,
    slot: WorkerSlot,
    spec: MatterSpec,
    tasks: Any,
    results: Any,
    stop: Any,
    log_level: int,
) -> None:
    """A worker process: open the Matter once, then render chains from ``tasks`` until None.

    Every message to the parent starts with its kind and the worker number; the last is "exit".
    """
    signal.signal(signal.SIGINT, _interrupt_once)
    logging.basicConfig(level=log_level, format=f"%(levelname)s %(name)s [worker {worker}]: %(message)s")
    current: list[Any] = [None, None]  # work dir, segment index being rendered
    try:
        if slot.threads is not None:
            torch.set_num_threads(slot.threads)
        matter = spec.open(slot.device)

        def progress(index: int, event: ProgressEvent) -> None:
            results.put(("progress", worker, current[0], index, event.frames_done))

        while not stop.is_set():
            chain: Chain | None = tasks.get()
            if chain is None:
                break
            current[0] = str(chain.work_dir)
            for index in chain.indices:  # in order: each may start from the state of the one before
                if stop.is_set():
                    break
                current[1] = index
                record = render_segment(chain.work_dir, index, matter, on_progress=_bound_progress(progress, index))
                results.put(("done", worker, current[0], record))
    except BaseException as err:  # reported to the parent, which raises it
        if _interrupted or isinstance(err, KeyboardInterrupt):  # libraries may wrap the interrupt
            results.put(("interrupted", worker))
            return
        results.put(("error", worker, current[0], current[1], _portable(err), traceback.format_exc()))
    finally:
        results.put(("exit", worker))


def _portable(err: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a JobError with its text."""
    try:
        pickle.loads(pickle.dumps(err))
    except Exception:
        return JobError(f"{type(err).__name__}: {err}")
    return err


# --- parent -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenderedSegment:
    """A segment rendered by a run: its work dir, the worker that rendered it, its done record."""

    work_dir: Path
    worker: int
    record: CompletedSegment


def segment_error(where: str, worker: str, err: BaseException) -> RvmRenderError:
    """One-line error for a failure on a worker, keeping the type of an RvmRenderError.

    Args:
        where: what failed (``"segment 3 of '/work/dir'"``).
        worker: which worker (``"worker 1 (cpu, 1 threads)"``).
        err: the worker's exception.
    """
    if isinstance(err, RvmRenderError):
        message = f"{where} failed on {worker}: {err}"
        try:
            return type(err)(message)
        except TypeError:
            return JobError(message)
    return JobError(f"{where} failed on {worker}: {type(err).__name__}: {err} (a bug: the worker's "
                    f"traceback is in the log; finished segments are kept, re-run to resume)")


class _Run:
    """The parent's view of one local run: messages in, progress and the first failure out."""

    def __init__(self, opened: Sequence[WorkDir], slots: Sequence[WorkerSlot],
                 on_progress: ProgressCallback | None) -> None:  # fmt: skip
        self.by_path = {str(wd.path): wd for wd in opened}
        self.slots = slots
        self.frames_total, self.frames_resumed = frames_total_and_resumed(opened)
        self.on_progress = on_progress
        self.input_path = Path(opened[0].plan.fingerprint.input.path)
        self.started = time.perf_counter()
        self.frames: dict[tuple[str, int], int] = {}
        self.rendered: list[RenderedSegment] = []
        self.exited: set[int] = set()
        self.failure: RvmRenderError | None = None
        self.interrupted = False

    def worker_name(self, worker: int) -> str:
        return f"worker {worker} ({self.slots[worker]})"

    def report(self) -> None:
        if self.on_progress is not None:
            done = min(self.frames_resumed + sum(self.frames.values()), self.frames_total)
            self.on_progress(ProgressEvent(self.input_path, done, self.frames_total,
                                           time.perf_counter() - self.started, self.frames_resumed))

    def fail(self, failure: RvmRenderError) -> None:
        if self.failure is None:
            self.failure = failure

    def handle(self, message: tuple[Any, ...]) -> None:
        kind, worker = message[0], message[1]
        if kind == "progress":
            _, _, work_dir, index, frames_done = message
            self.frames[(work_dir, index)] = frames_done
            self.report()
        elif kind == "done":
            _, _, work_dir, record = message
            self.rendered.append(RenderedSegment(Path(work_dir), worker, record))
            self.frames[(work_dir, record.index)] = self.by_path[work_dir].plan.segment(record.index).frames
            self.report()
        elif kind == "error":
            _, _, work_dir, index, err, trace = message
            log.error("%s failed:\n%s", self.worker_name(worker), trace.rstrip())
            where = "opening the engine" if work_dir is None else f"segment {index} of '{work_dir}'"
            self.fail(segment_error(where, self.worker_name(worker), err))
        elif kind == "interrupted":
            self.interrupted = True
        elif kind == "exit":
            self.exited.add(worker)


def _frames_matted(segment: Segment) -> int:
    """Frames a segment decodes and mattes: its own plus its pre-roll."""
    return segment.last_frame - segment.decode_first_frame + 1


def run_segments_locally(
    work_dirs: Sequence[WorkDir | str | os.PathLike[str]],
    spec: MatterSpec,
    *,
    slots: Sequence[WorkerSlot] | None = None,
    on_progress: ProgressCallback | None = None,
) -> list[RenderedSegment]:
    """Render every unfinished segment of ``work_dirs`` with local worker processes.

    Args:
        work_dirs: planned renders (:class:`WorkDir` or its folder), one per clip.
        spec: how workers open the engine (:meth:`MatterSpec.resolved`).
        slots: the workers; default :func:`local_worker_slots` for ``spec.options.device``.
        on_progress: called in this process with the frames written over all work dirs
            (pre-roll not counted); ``input_path`` is the first work dir's input.

    Returns:
        The segments rendered now, in the order they finished.

    Raises:
        RvmRenderError: a segment failed or a worker died, naming the segment, work dir and
            worker (same type as the worker's error when it was an RvmRenderError).
        KeyboardInterrupt: interrupted; workers were stopped, finished segments are kept.
    """
    opened = [wd if isinstance(wd, WorkDir) else WorkDir.load(wd) for wd in work_dirs]
    if slots is None:
        slots = local_worker_slots(device=spec.options.device)
    if not slots:
        raise ConfigError("no workers to run segments on")
    chains = pending_chains(opened)
    if not chains:
        log.info("every segment is already done")
        return []
    slots = list(slots)[: len(chains)]
    log.info("rendering %d segments (%d chains) on %d worker(s): %s",
             sum(len(c.indices) for c in chains), len(chains), len(slots), "; ".join(map(str, slots)))
    context = multiprocessing.get_context("spawn")
    tasks = context.Queue()
    results = context.Queue()
    stop = context.Event()
    for chain in chains:
        tasks.put(chain)
    for _ in slots:
        tasks.put(None)
    level = logging.getLogger().getEffectiveLevel()
    processes = [
        context.Process(target=_worker_main, args=(worker, slot, spec, tasks, results, stop, level),
                        name=f"rvm-render-worker-{worker}", daemon=True)
        for worker, slot in enumerate(slots)
    ]
    run = _Run(opened, slots, on_progress)

    def drain() -> None:
        try:
            run.handle(results.get(timeout=_POLL_S))
        except queue.Empty:
            pass

    try:
        for process in processes:
            process.start()
        run.report()
        while len(run.exited) < len(processes):
            drain()
            if run.failure is not None or run.interrupted:
                stop.set()
            for worker, process in enumerate(processes):
                if worker in run.exited or process.is_alive():
                    continue
                drain()  # it may have said goodbye just before exiting
                if worker not in run.exited:
                    run.exited.add(worker)
                    run.fail(JobError(f"{run.worker_name(worker)} died (exit code {process.exitcode}); "
                                      f"finished segments are kept, re-run to resume"))
                    stop.set()
    except KeyboardInterrupt:
        _stop_workers(processes, stop, drain)
        raise
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            if process.pid is not None:
                process.join(timeout=STOP_TIMEOUT_S)
        tasks.cancel_join_thread()
        results.cancel_join_thread()
    if run.failure is not None:
        raise run.failure
    if run.interrupted:
        raise KeyboardInterrupt
    log.info("%d segments rendered in %.1f s", len(run.rendered), time.perf_counter() - run.started)
    return run.rendered


def _stop_workers(processes: Sequence[Any], stop: Any, drain: Callable[[], None]) -> None:
    """Interrupt every live worker's segment, give them STOP_TIMEOUT_S to abort, then terminate."""
    stop.set()
    for process in processes:
        if process.is_alive() and process.pid is not None:
            try:
                os.kill(process.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        try:
            drain()
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            break
    for process in processes:
        if process.is_alive():
            log.warning("%s did not stop within %.0f s; terminating it", process.name, STOP_TIMEOUT_S)
            process.terminate()
