"""Ray executor: the segments of planned renders run by Ray actors, one per GPU.

The same work as :mod:`rvm_render.jobs.scheduler`, spread over a Ray cluster
(docs.ray.io, "Actors"): one actor per GPU of the cluster (``num_gpus=1``; Ray sets its
``CUDA_VISIBLE_DEVICES``), or, on a cluster without GPUs, ``workers`` CPU actors sharing the
cluster's CPUs. Each actor opens its :class:`~rvm_render.engine.Matter` once. A chain of
dependent segments (:func:`~rvm_render.jobs.segments.segment_chains`) stays on one actor and runs
in order; the driver sends it one segment at a time, so a failure or Ctrl-C stops after the
segments in flight. Idle actors take the next chain, longest first.

Work dirs, inputs and output folders must be at the same path on every node (shared storage):
actors read the plan and the hand-over states from the work dir and write the outputs there.

``ray`` is an optional dependency (``pip install 'rvm-render[ray]'``); this module imports it
only when it runs.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rvm_render.errors import ConfigError, JobError, RvmRenderError
from rvm_render.jobs.checkpoint import CompletedSegment, WorkDir
from rvm_render.jobs.runner import render_segment
from rvm_render.jobs.scheduler import (
    Chain,
    MatterSpec,
    RenderedSegment,
    frames_total_and_resumed,
    pending_chains,
    segment_error,
)
from rvm_render.pipeline.progress import ProgressCallback, ProgressEvent

__all__ = ["RayActorSpec", "join_ray", "leave_ray", "ray_actor_specs", "run_segments_on_ray"]

log = logging.getLogger(__name__)

#: While segments run, progress is reported at least this often (the daemon's cancel is checked then).
REPORT_EVERY_S = 1.0


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise ConfigError("--executor ray needs Ray; pip install 'rvm-render[ray]'") from err
    return ray


def join_ray(address: str | None, log_level: int) -> bool:
    """Start a local Ray instance or join the cluster at ``address``, unless this process is already in one.

    A long-running process (the daemon) joins once, from its main thread, before it installs its own
    signal handlers: Ray's start-up replaces the process's SIGTERM handling.

    Returns:
        True when this call started or joined Ray (the caller leaves it with :func:`leave_ray`).

    Raises:
        ConfigError: Ray is not installed.
        JobError: the Ray cluster cannot be reached.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=True, logging_level=log_level)
    except (ConnectionError, ValueError) as err:
        raise JobError(f"cannot start or join Ray at {address or 'a new local instance'}: {err}; "
                       f"check --address (e.g. auto, or ray://HEAD:10001)") from err
    return True


def leave_ray() -> None:
    """Leave Ray (a local instance this process started stops)."""
    _import_ray().shutdown()


@dataclass(frozen=True, slots=True)
class RayActorSpec:
    """One actor: the GPUs and CPUs it reserves and the device its Matter uses."""

    device: str
    num_gpus: int
    num_cpus: int

    def __str__(self) -> str:
        return f"{self.device}, {self.num_cpus} CPU" + (f", {self.num_gpus} GPU" if self.num_gpus else "")


def ray_actor_specs(
    resources: dict[str, float],
    workers: int | None = None,
    device: str = "auto",
    *,
    node_cpus: int | None = None,
) -> list[RayActorSpec]:
    """The actors to start for a cluster with ``resources`` (``ray.cluster_resources()``).

    One per GPU (at most ``workers``) unless ``device="cpu"`` or the cluster has none; then
    ``workers`` (default 1) CPU actors, each reserving an equal share of the CPUs (at most
    ``node_cpus``, the CPUs of the largest node, so that every actor fits on one node).

    Raises:
        ConfigError: ``workers`` < 1, ``device`` asks for CUDA on a cluster without GPUs, or the
            cluster has fewer CPUs than actors.
    """
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise ConfigError(f"--workers: must be >= 1, got {workers!r}")
    gpus = int(resources.get("GPU", 0))
    cpus = int(resources.get("CPU", 0))
    if device.startswith("cuda") and gpus == 0:
        raise ConfigError(f"--device {device}: the Ray cluster has no GPUs; use --device cpu or auto")
    if gpus and device != "cpu":
        count = min(workers or gpus, gpus)
        return [RayActorSpec("cuda", 1, max(1, min(2, cpus // count))) for _ in range(count)]
    count = workers or 1
    if cpus < count:
        raise ConfigError(f"--workers {count}: the Ray cluster has only {cpus} CPU(s)")
    share = cpus // count if node_cpus is None else max(1, min(cpus // count, node_cpus))
    return [RayActorSpec("cpu", 0, share) for _ in range(count)]


class SegmentActor:
    """A Ray actor holding one Matter; renders the segments it is given, one call each."""

    def __init__(self, spec: MatterSpec, device: str, threads: int, log_level: int = logging.INFO) -> None:
        logging.basicConfig(level=log_level, format="%(levelname)s %(name)s [ray actor]: %(message)s")
        if device == "cpu":
            torch.set_num_threads(max(1, threads))
        self.matter = spec.open(device)

    def render(self, work_dir: str, index: int) -> CompletedSegment:
        """Render segment ``index`` of ``work_dir``; returns its done record."""
        return render_segment(Path(work_dir), index, self.matter)


def run_segments_on_ray(
    work_dirs: Sequence[WorkDir | str | os.PathLike[str]],
    spec: MatterSpec,
    *,
    address: str | None = None,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
    log_level: int | None = None,
) -> list[RenderedSegment]:
    """Render every unfinished segment of ``work_dirs`` on Ray actors.

    Args:
        work_dirs: planned renders (:class:`WorkDir` or folder), on storage every node sees.
        spec: how actors open the engine (:meth:`MatterSpec.resolved`); ``options.device``
            ``"cpu"`` forces CPU actors.
        address: Ray cluster to join (``ray.init(address=...)``, e.g. ``"auto"`` or
            ``"ray://head:10001"``); None: the running Ray (this process or ``RAY_ADDRESS``),
            else a new local one, shut down at the end.
        workers: most GPU actors, or the number of CPU actors (default 1).
        on_progress: called after each segment with the frames written (pre-roll not counted).
        log_level: the level of Ray's own messages and of the actors' logs (default: the root
            logger's, so ``rvm-render -q`` silences Ray's INFO lines too).

    Returns:
        The segments rendered now, in the order they finished (``worker`` = actor number).

    Raises:
        ConfigError: Ray is not installed, or the cluster lacks the resources asked for.
        JobError: the Ray cluster cannot be reached.
        RvmRenderError: a segment failed or an actor died, naming segment, work dir and actor.
        KeyboardInterrupt: interrupted; the segments in flight were cancelled.
    """
    ray = _import_ray()
    opened = [wd if isinstance(wd, WorkDir) else WorkDir.load(wd) for wd in work_dirs]
    chains = deque(pending_chains(opened))
    if not chains:
        log.info("every segment is already done")
        return []
    level = logging.getLogger().getEffectiveLevel() if log_level is None else log_level
    owned = join_ray(address, level)
    try:
        node_cpus = max((int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")), default=0)
        actor_specs = ray_actor_specs(ray.cluster_resources(), workers, spec.options.device,
                                      node_cpus=node_cpus or None)[: len(chains)]
        remote_class = ray.remote(SegmentActor)
        actors = [
            remote_class.options(num_gpus=a.num_gpus, num_cpus=a.num_cpus).remote(spec, a.device, a.num_cpus, level)
            for a in actor_specs
        ]
        log.info("rendering %d chains on %d Ray actor(s): %s", len(chains), len(actors),
                 "; ".join(map(str, actor_specs)))
        return _dispatch(ray, actors, actor_specs, chains, opened, on_progress)
    finally:
        if owned:
            leave_ray()


def _dispatch(
    ray: Any,
    actors: list[Any],
    actor_specs: list[RayActorSpec],
    chains: deque[Chain],
    opened: Sequence[WorkDir],
    on_progress: ProgressCallback | None,
) -> list[RenderedSegment]:
    """Feed chains to actors, one segment call at a time; collect done records in order."""
    frames_total, frames_resumed = frames_total_and_resumed(opened)
    by_path = {str(wd.path): wd for wd in opened}
    input_path = Path(opened[0].plan.fingerprint.input.path)
    started = time.perf_counter()
    remaining: dict[int, deque[int]] = {}
    chain_of: dict[int, Chain] = {}
    in_flight: dict[Any, tuple[int, str, int]] = {}
    rendered: list[RenderedSegment] = []
    frames_done = frames_resumed  # finished by an earlier run: done, but not this run's speed
    failure: RvmRenderError | None = None

    def report() -> None:
        if on_progress is not None:
            on_progress(ProgressEvent(input_path, min(frames_done, frames_total), frames_total,
                                      time.perf_counter() - started, frames_resumed))

    def submit(actor: int) -> None:
        if not remaining.get(actor):
            if not chains:
                return
            chain_of[actor] = chains.popleft()
            remaining[actor] = deque(chain_of[actor].indices)
        work_dir = str(chain_of[actor].work_dir)
        index = remaining[actor].popleft()
        in_flight[actors[actor].render.remote(work_dir, index)] = (actor, work_dir, index)

    try:
        report()  # frames an earlier run finished count as done at once, also when none is left to render
        for actor in range(len(actors)):
            submit(actor)
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=REPORT_EVERY_S)
            if not ready:
                report()  # between segments too, so a caller that stops the render (cancel) is heard at once
                continue
            actor, work_dir, index = in_flight.pop(ready[0])
            try:
                record = ray.get(ready[0])
            except ray.exceptions.RayError as err:
                cause = getattr(err, "cause", None) or err
                if isinstance(err, ray.exceptions.RayActorError):
                    cause = JobError(f"the actor died ({type(err).__name__}); finished segments are kept, "
                                     f"re-run to resume")
                failure = failure or segment_error(f"segment {index} of '{work_dir}'",
                                                   f"Ray actor {actor} ({actor_specs[actor]})", cause)
                log.error("Ray actor %d failed on segment %d of '%s': %s", actor, index, work_dir, err)
                continue
            rendered.append(RenderedSegment(Path(work_dir), actor, record))
            frames_done += by_path[work_dir].plan.segment(index).frames
            report()
            if failure is None:
                submit(actor)
    except KeyboardInterrupt:
        # the segments in flight stop where they are: not done, so a re-run renders them again
        for ref in in_flight:
            try:
                ray.cancel(ref)
            except Exception as err:  # Ray refuses some cancels (e.g. finished tasks); kill follows
                log.debug("cancel %s: %s", ref, err)
        for handle in actors:
            ray.kill(handle)
        raise
    if failure is not None:
        raise failure
    log.info("%d segments rendered on Ray in %.1f s", len(rendered), time.perf_counter() - started)
    return rendered
