"""Matting speed and memory on 05_default_juggle.mp4 at ratio 0.375, measured in one run.

    python bench/matte_speed.py [--shared DIR] [--frames N]

Measures, on this machine and in this run:
  (a) model-only fps of an official-style reference: our MattingNetwork in eager fp32, not
      fused, frame by frame, called as the official README does
      (``fgr, pha, *rec = model(src, *rec, downsample_ratio)``), frames decoded beforehand;
  (b) model-only fps of the default engine (``Matter``), frames decoded beforehand:
      (b1) its steps one after another on one thread (``Matter.matte``), and
      (b2) its steps overlapped on threads as the pipeline runs them, with no writers;
      both with the default threads per step, and again with 2 (b1', b2'); the fastest of
      the four is "own model-only";
  (c) end-to-end fps and peak RSS of ``rvm-render matte --formats prores4444,alpha`` over the
      whole clip, process start to exit (a subprocess, its process tree polled with psutil);
      median of --e2e-repeats runs;
The bench process keeps freed memory mapped as ``rvm-render`` does (``keep_freed_memory``).
  (d) peak RSS of the same command on the first 60 frames, to show memory stays flat.
The official-RVM baseline figures (4.5 fps end to end, 5.7 fps model only, 1.1 GiB) are quoted
from issue 2, not measured here. The shared data folder comes from --shared or
$RVM_RENDER_SHARED.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import psutil
import torch

from rvm_render.cli.main import keep_freed_memory
from rvm_render.engine import EngineOptions, Matter, auto_step_threads, open_matter, preferred_batch_frames
from rvm_render.engine.weights import network_for_weights, read_weights
from rvm_render.media.reader import DecodedFrame
from rvm_render.pipeline.render import infer_steps
from rvm_render.pipeline.stages import run_stages

CLIP = Path("testdata/clips/05_default_juggle.mp4")
WEIGHTS = Path("models/rvm_mobilenetv3_tfjs_uint8")
RATIO = 0.375
FLAT_FRAMES = 60
WARMUP_FRAMES = 3
# From issue 2: official RVM convert_video on this 2-core CPU (not measured here).
ISSUE_E2E_FPS = 4.5
ISSUE_MODEL_FPS = 5.7
ISSUE_PEAK_RSS_GIB = 1.1
GIB = 1 << 30


def decoded_frames(clip: Path, count: int) -> list[DecodedFrame]:
    """The first ``count`` frames as 8-bit RGB."""
    frames = []
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            if len(frames) == count:
                break
            frames.append(DecodedFrame(index=len(frames), rgb=frame.to_ndarray(format="rgb24")))
    return frames


def as_tensor(frame: DecodedFrame) -> torch.Tensor:
    """``[1, 3, H, W]`` float32 RGB 0..1."""
    return torch.from_numpy(frame.rgb).permute(2, 0, 1)[None].float().div(255).contiguous()


def reference_fps(model: torch.nn.Module, frames: list[torch.Tensor]) -> float:
    """Official call pattern, eager fp32, frame by frame; warm-up frames excluded."""
    rec: list[torch.Tensor | None] = [None] * 4
    with torch.inference_mode():
        for index, src in enumerate(frames):
            if index == WARMUP_FRAMES:
                started = time.perf_counter()
            fgr, pha, *rec = model(src, *rec, RATIO)
    return (len(frames) - WARMUP_FRAMES) / (time.perf_counter() - started)


def engine_fps(matter: Matter, frames: list[torch.Tensor]) -> float:
    """The default engine's steps one after another, one frame per call; warm-up excluded."""
    matter.reset()
    for index, src in enumerate(frames):
        if index == WARMUP_FRAMES:
            started = time.perf_counter()
        matter.matte(src)
    return (len(frames) - WARMUP_FRAMES) / (time.perf_counter() - started)


def overlapped_engine_fps(matter: Matter, frames: list[DecodedFrame]) -> float:
    """The default engine's steps overlapped on threads as the pipeline runs them, no writers.

    Frames are decoded beforehand (only their conversion to float runs, on the feeding thread);
    the clock starts when the warm-up frames are through the last step.
    """
    matter.reset()
    started = 0.0

    def on_done(done: int) -> None:
        nonlocal started
        if done == WARMUP_FRAMES:
            started = time.perf_counter()

    run_stages(iter(frames), infer_steps(matter), [], batch_frames=preferred_batch_frames("cpu"), on_batch_done=on_done)
    return (len(frames) - WARMUP_FRAMES) / (time.perf_counter() - started)


def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and its children, in bytes (0 once it has gone)."""
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def end_to_end(shared: Path, frames: int | None) -> tuple[float, int]:
    """Run ``rvm-render matte`` once; return (fps over the frames rendered, peak tree RSS)."""
    cli = Path(sys.executable).with_name("rvm-render")
    out_dir = Path(tempfile.mkdtemp(prefix="rvm-bench-"))
    command = [
        str(cli), "-q", "matte", str(shared / CLIP), "-o", str(out_dir),
        "--weights", str(shared / WEIGHTS), "--formats", "prores4444,alpha",
        "--downsample-ratio", str(RATIO), "--overwrite",
    ]  # fmt: skip
    if frames is not None:
        command += ["--frames", f"0-{frames - 1}"]
    try:
        started = time.perf_counter()
        process = psutil.Popen(command)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process))
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        if process.returncode != 0:
            raise SystemExit(f"rvm-render exited with {process.returncode}: {' '.join(command)}")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return (frames or clip_frames(shared / CLIP)) / elapsed, peak


def clip_frames(clip: Path) -> int:
    with av.open(str(clip)) as container:
        return container.streams.video[0].frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=os.environ.get("RVM_RENDER_SHARED"),
                        help="shared data folder (default: $RVM_RENDER_SHARED)")  # fmt: skip
    parser.add_argument("--frames", type=int, default=40, help="frames for the model-only runs (default 40)")
    parser.add_argument("--repeats", type=int, default=3, help="model-only repeats, interleaved (median kept)")
    parser.add_argument("--e2e-repeats", type=int, default=3, help="end-to-end runs (median kept)")
    args = parser.parse_args()
    if args.shared is None:
        parser.error("pass --shared DIR or set RVM_RENDER_SHARED")
    shared: Path = args.shared
    keep_freed_memory()  # as rvm-render does, so model-only and end-to-end allocate alike

    decoded = decoded_frames(shared / CLIP, args.frames + WARMUP_FRAMES)
    frames = [as_tensor(frame) for frame in decoded]
    loaded = read_weights(shared / WEIGHTS)
    reference = network_for_weights(loaded).eval()
    weights = shared / WEIGHTS
    matters = {
        threads: open_matter(weights, EngineOptions(device="cpu", downsample_ratio=RATIO, step_threads=threads))
        for threads in ("auto", 2)
    }
    for matter in matters.values():
        matter.matte(frames[0])  # first use may export and cache the ONNX graphs

    ref_runs: list[float] = []
    engine_runs: dict[tuple[object, str], list[float]] = {}
    for _ in range(args.repeats):  # interleaved, so machine load hits all alike
        ref_runs.append(reference_fps(reference, frames))
        for threads, matter in matters.items():
            engine_runs.setdefault((threads, "in turn"), []).append(engine_fps(matter, frames))
            engine_runs.setdefault((threads, "overlapped"), []).append(overlapped_engine_fps(matter, decoded))
    ref_fps = statistics.median(ref_runs)
    engine_medians = {key: statistics.median(runs) for key, runs in engine_runs.items()}
    model_fps = max(engine_medians.values())
    matter = matters["auto"]

    e2e_runs = [end_to_end(shared, None) for _ in range(args.e2e_repeats)]
    e2e_fps = statistics.median(fps for fps, _ in e2e_runs)
    e2e_peak = max(peak for _, peak in e2e_runs)
    _, short_peak = end_to_end(shared, FLAT_FRAMES)

    total = clip_frames(shared / CLIP)
    e2e_list = ", ".join(f"{fps:.2f}" for fps, _ in e2e_runs)
    print(f"05_default_juggle.mp4, 1280x720, ratio {RATIO}, torch threads {torch.get_num_threads()}, "
          f"engine backend {matter.backend}, {len(matter.steps())} engine steps, "
          f"auto threads/step {auto_step_threads()}")  # fmt: skip
    print(f"{'measure':64s} {'value':>10s}")
    rows = [
        (f"(a) reference model-only fps (eager, {args.frames} frames)", f"{ref_fps:10.2f}"),
        *(
            (f"(b) engine model-only fps, steps {how}, {threads} threads/step", f"{fps:10.2f}")
            for (threads, how), fps in engine_medians.items()
        ),
        (f"(c) end-to-end fps, prores4444+alpha, {total} frames", f"{e2e_fps:10.2f}"),
        (f"(c) peak RSS, {total} frames (GiB)", f"{e2e_peak / GIB:10.2f}"),
        (f"(d) peak RSS, first {FLAT_FRAMES} frames (GiB)", f"{short_peak / GIB:10.2f}"),
    ]
    for name, value in rows:
        print(f"{name:64s} {value}")
    print(f"(c) runs: {e2e_list} fps (median kept); model-only: median of {args.repeats}")
    print()
    print(f"end-to-end / issue baseline {ISSUE_E2E_FPS} fps        {e2e_fps / ISSUE_E2E_FPS:6.2f}x  (target >= 2)")
    print(f"end-to-end / own model-only (best of b)   {e2e_fps / model_fps:6.2f}x  (target >= 0.8)")
    print(f"own model-only / reference model-only        {model_fps / ref_fps:6.2f}x")
    print(f"own model-only / issue {ISSUE_MODEL_FPS} fps              {model_fps / ISSUE_MODEL_FPS:6.2f}x")
    print(f"reference model-only / issue {ISSUE_MODEL_FPS} fps        {ref_fps / ISSUE_MODEL_FPS:6.2f}x  "
          "(this machine now vs the issue's)")  # fmt: skip
    print(f"peak RSS / issue {ISSUE_PEAK_RSS_GIB} GiB                    {e2e_peak / GIB / ISSUE_PEAK_RSS_GIB:6.2f}x")
    print(f"peak RSS whole clip / first {FLAT_FRAMES} frames         {e2e_peak / max(short_peak, 1):6.2f}x  (flat ~ 1)")
    print(f"(baselines {ISSUE_E2E_FPS} fps / {ISSUE_MODEL_FPS} fps / {ISSUE_PEAK_RSS_GIB} GiB are quoted from issue 2, "
          "not measured here)")  # fmt: skip


if __name__ == "__main__":
    main()
