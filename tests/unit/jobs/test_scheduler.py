"""Scheduling without rendering: worker slots, Ray actor specs, pending chains, error wording."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from rvm_render.errors import CheckpointMismatchError, ConfigError, JobError
from rvm_render.jobs.checkpoint import WorkDir, plan_for
from rvm_render.jobs.ray_executor import RayActorSpec, ray_actor_specs
from rvm_render.jobs.scheduler import (
    WorkerSlot,
    frames_total_and_resumed,
    local_worker_slots,
    pending_chains,
    segment_error,
)
from rvm_render.jobs.segments import PlanMode, SegmentPolicy, segment_chains

FRAMES_TOTAL = 247  # 05_default_juggle.mp4 (LICENSES.md); only the plan uses it here


def _work_dir(clips_dir: Path, folder: Path, mode: PlanMode, cuts: tuple[int, ...] = (100, 180)) -> WorkDir:
    plan = plan_for(clips_dir / "05_default_juggle.mp4", "f" * 64, {"formats": ["exr"]}, FRAMES_TOTAL, cuts,
                    SegmentPolicy(max_frames=30, preroll_frames=10), mode)
    return WorkDir.open(folder, plan)


def test_cpu_workers_split_the_cores() -> None:
    cores = os.cpu_count() or 1
    assert local_worker_slots(device="cpu") == [WorkerSlot("cpu")]
    slots = local_worker_slots(2, device="cpu")
    assert slots == [WorkerSlot("cpu", max(1, cores // 2))] * 2


def test_auto_without_cuda_is_one_cpu_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert local_worker_slots() == [WorkerSlot("cpu")]
    with pytest.raises(ConfigError, match="CUDA is not available"):
        local_worker_slots(device="cuda")


def test_one_worker_per_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert local_worker_slots() == [WorkerSlot(f"cuda:{i}") for i in range(3)]
    assert local_worker_slots(2) == [WorkerSlot("cuda:0"), WorkerSlot("cuda:1")]
    assert local_worker_slots(device="cuda:2") == [WorkerSlot("cuda:2")]
    assert local_worker_slots(3, device="cpu") == [WorkerSlot("cpu", max(1, (os.cpu_count() or 1) // 3))] * 3
    with pytest.raises(ConfigError, match="only 3 CUDA device"):
        local_worker_slots(4)


@pytest.mark.parametrize("workers", [0, -1, True])
def test_workers_must_be_positive(workers: int) -> None:
    with pytest.raises(ConfigError, match="--workers"):
        local_worker_slots(workers, device="cpu")
    with pytest.raises(ConfigError, match="--workers"):
        ray_actor_specs({"CPU": 8}, workers)


def test_ray_actors_one_per_gpu_else_cpu_shares() -> None:
    assert ray_actor_specs({"CPU": 16, "GPU": 2}) == [RayActorSpec("cuda", 1, 2)] * 2
    assert ray_actor_specs({"CPU": 16, "GPU": 4}, workers=3) == [RayActorSpec("cuda", 1, 2)] * 3
    assert ray_actor_specs({"CPU": 16, "GPU": 2}, device="cpu") == [RayActorSpec("cpu", 0, 16)]
    assert ray_actor_specs({"CPU": 2}, workers=2) == [RayActorSpec("cpu", 0, 1)] * 2
    assert ray_actor_specs({"CPU": 32}, node_cpus=16) == [RayActorSpec("cpu", 0, 16)], "fits on one node"
    with pytest.raises(ConfigError, match="only 2 CPU"):
        ray_actor_specs({"CPU": 2}, workers=3)
    with pytest.raises(ConfigError, match="no GPUs"):
        ray_actor_specs({"CPU": 2}, device="cuda")


def test_pending_chains_are_the_plans_chains_longest_first(clips_dir: Path, tmp_path: Path) -> None:
    sequential = _work_dir(clips_dir, tmp_path / "a", "sequential")
    parallel = _work_dir(clips_dir, tmp_path / "b", "parallel")
    chains = pending_chains([sequential, parallel])
    expected = {(sequential.path, tuple(s.index for s in chain)) for chain in segment_chains(sequential.plan.segments)}
    expected |= {(parallel.path, (s.index,)) for s in parallel.plan.segments}
    assert {(c.work_dir, c.indices) for c in chains} == expected
    frames = [c.frames for c in chains]
    assert frames == sorted(frames, reverse=True)
    # a chain's frames count what its workers decode: its segments plus their pre-roll
    by_key = {(c.work_dir, c.indices): c.frames for c in chains}
    for segment in parallel.plan.segments:
        assert by_key[(parallel.path, (segment.index,))] == segment.last_frame - segment.decode_first_frame + 1


def test_pending_chains_skip_finished_segments(clips_dir: Path, tmp_path: Path) -> None:
    work = _work_dir(clips_dir, tmp_path / "a", "sequential", cuts=())
    (chain,) = segment_chains(work.plan.segments)
    work.mark_done(chain[0].index, b"state-0", None)
    work.mark_done(chain[1].index, b"state-1", None)
    (pending,) = pending_chains([work])
    assert pending.indices == tuple(s.index for s in chain[2:])
    for segment in chain[2:]:
        work.mark_done(segment.index, b"state", None)
    assert pending_chains([work]) == []


def test_frames_done_before_the_run_count_as_resumed(clips_dir: Path, tmp_path: Path) -> None:
    """As an extended render's earlier frames or a resumed render's segments: done, not this run's work."""
    first, second = _work_dir(clips_dir, tmp_path / "a", "parallel"), _work_dir(clips_dir, tmp_path / "b", "parallel")
    done = first.plan.segments[:3]
    for segment in done:
        first.mark_done(segment.index, None, None)
    assert frames_total_and_resumed([first, second]) == (2 * FRAMES_TOTAL, sum(s.frames for s in done))


def test_segment_error_keeps_the_type_and_names_the_worker() -> None:
    err = segment_error("segment 3 of '/w'", "worker 1 (cpu)", CheckpointMismatchError("input changed; re-plan"))
    assert type(err) is CheckpointMismatchError
    assert str(err) == "segment 3 of '/w' failed on worker 1 (cpu): input changed; re-plan"
    bug = segment_error("segment 3 of '/w'", "worker 1 (cpu)", ZeroDivisionError("division by zero"))
    assert type(bug) is JobError
    assert str(bug).startswith("segment 3 of '/w' failed on worker 1 (cpu): ZeroDivisionError: division by zero")


def test_matter_spec_for_plan_takes_the_plans_engine(tfjs_weights: Path) -> None:
    from rvm_render.jobs.checkpoint import RenderSpec
    from rvm_render.jobs.scheduler import MatterSpec

    spec = RenderSpec(input_path="/in.mov", output_dir="/out", stem="in", first_frame=0, last_frame=9,
                      formats=("exr",), background=None, downsample_ratio=0.25, batch_frames=4, device="cuda:1",
                      precision="fp16", variant="mobilenetv3", weights_path=str(tfjs_weights), weights_sha256="0" * 64)
    matter_spec = MatterSpec.for_plan(spec)
    assert matter_spec.weights == tfjs_weights.resolve()
    assert (matter_spec.options.device, matter_spec.options.precision, matter_spec.options.downsample_ratio) == (
        "cuda:1", "fp16", 0.25)
    assert matter_spec.variant == "mobilenetv3"
