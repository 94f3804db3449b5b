"""Matting speed and memory on 05_default_juggle.mp4 at ratio 0.375, measured in one run.

    python bench/matte_speed.py [--shared DIR] [--frames N] [--e2e-frames N]

Measures, on this machine and in this run:
  (a) model-only fps of an official-style reference: our MattingNetwork in eager fp32, not
      fused, frame by frame, called as the official README does
      (``fgr, pha, *rec = model(src, *rec, downsample_ratio)``), frames decoded beforehand;
  (b) model-only fps of the default engine (``Matter``), frames decoded beforehand:
      (b1) its steps one after another on one thread (``Matter.matte``), and
      (b2) its steps overlapped on threads as the pipeline runs them, with no writers;
      both with the default threads per step, and again with 2 (b1', b2'); the fastest of
      the four is "own model-only";
  (c) end-to-end fps and peak RSS, process start to exit (a subprocess, its process tree polled
      with psutil), of three commands run in turn in each of --e2e-repeats rounds (median fps
      and highest peak kept), same clip (whole, or its first --e2e-frames), weights and ratio:
      (c1) the reference: the official RVM ``convert_video`` (alpha and composition videos),
           as reproduced by ``bench/reference_convert_video.py`` (see its docstring);
      (c2) ``rvm-render matte --formats alpha,comp``, the same deliverables (the composite over
           the reference's green);
      (c3) ``rvm-render matte --formats prores4444,alpha``, the professional deliverables;
  (d) peak RSS of (c3) on the first 60 frames, to show memory stays flat.
Every ratio printed is between figures measured in this run. The bench process keeps freed
memory mapped as ``rvm-render`` does (``keep_freed_memory``); the subprocesses set up their own.
The shared data folder comes from --shared or $RVM_RENDER_SHARED.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
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
REFERENCE_SCRIPT = Path(__file__).with_name("reference_convert_video.py")
REFERENCE_GREEN = "#78ff9b"  # convert_video's composition background, (120, 255, 155)
REFERENCE = "reference convert_video"
ALPHA_COMP = "rvm-render (alpha,comp)"
PRORES_ALPHA = "rvm-render (prores4444,alpha)"
GIB = 1 << 30
LABEL_WIDTH = 70


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


def rvm_render_command(shared: Path, out_dir: Path, formats: str, frames: int | None) -> list[str]:
    """``rvm-render -q matte`` of the clip into ``out_dir``; a comp goes over the reference's green."""
    command = [
        str(Path(sys.executable).with_name("rvm-render")), "-q", "matte", str(shared / CLIP), "-o", str(out_dir),
        "--weights", str(shared / WEIGHTS), "--formats", formats,
        "--downsample-ratio", str(RATIO), "--overwrite",
    ]  # fmt: skip
    if "comp" in formats.split(","):
        command += ["--background", REFERENCE_GREEN]
    if frames is not None:
        command += ["--frames", f"0-{frames - 1}"]
    return command


def reference_command(shared: Path, out_dir: Path, frames: int | None) -> list[str]:
    """The official ``convert_video`` as reproduced by ``reference_convert_video.py``, into ``out_dir``."""
    command = [
        sys.executable, str(REFERENCE_SCRIPT), str(shared / CLIP),
        "--weights", str(shared / WEIGHTS), "--downsample-ratio", str(RATIO),
        "--alpha", str(out_dir / "pha.mp4"), "--composition", str(out_dir / "com.mp4"),
    ]  # fmt: skip
    if frames is not None:
        command += ["--frames", str(frames)]
    return command


def end_to_end(command_for: Callable[[Path], list[str]], frames: int) -> tuple[float, int]:
    """Run ``command_for(out_dir)`` once, start to exit; return (fps over ``frames``, peak tree RSS)."""
    out_dir = Path(tempfile.mkdtemp(prefix="rvm-bench-"))
    command = command_for(out_dir)
    try:
        started = time.perf_counter()
        process = psutil.Popen(command)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process))
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        if process.returncode != 0:
            raise SystemExit(f"exited with {process.returncode}: {' '.join(command)}")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return frames / elapsed, peak


def clip_frames(clip: Path) -> int:
    with av.open(str(clip)) as container:
        return container.streams.video[0].frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=os.environ.get("RVM_RENDER_SHARED"),
                        help="shared data folder (default: $RVM_RENDER_SHARED)")  # fmt: skip
    parser.add_argument("--frames", type=int, default=40, help="frames for the model-only runs (default 40)")
    parser.add_argument("--repeats", type=int, default=3, help="model-only repeats, interleaved (median kept)")
    parser.add_argument("--e2e-repeats", type=int, default=3, help="end-to-end rounds, commands in turn (median kept)")
    parser.add_argument("--e2e-frames", type=int, default=None,
                        help="end-to-end runs on the first N frames only (default: the whole clip)")  # fmt: skip
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

    e2e_frames = args.e2e_frames or clip_frames(shared / CLIP)
    systems: dict[str, Callable[[Path], list[str]]] = {
        REFERENCE: partial(reference_command, shared, frames=args.e2e_frames),
        ALPHA_COMP: partial(rvm_render_command, shared, formats="alpha,comp", frames=args.e2e_frames),
        PRORES_ALPHA: partial(rvm_render_command, shared, formats="prores4444,alpha", frames=args.e2e_frames),
    }
    e2e_runs: dict[str, list[tuple[float, int]]] = {name: [] for name in systems}
    for _ in range(args.e2e_repeats):  # in turn, so machine load hits all alike
        for name, command_for in systems.items():
            e2e_runs[name].append(end_to_end(command_for, e2e_frames))
    e2e_fps = {name: statistics.median(fps for fps, _ in runs) for name, runs in e2e_runs.items()}
    e2e_peak = {name: max(peak for _, peak in runs) for name, runs in e2e_runs.items()}
    flat_command = partial(rvm_render_command, shared, formats="prores4444,alpha", frames=FLAT_FRAMES)
    _, short_peak = end_to_end(flat_command, FLAT_FRAMES)

    print(f"05_default_juggle.mp4, 1280x720, ratio {RATIO}, torch threads {torch.get_num_threads()}, "
          f"engine backend {matter.backend}, {len(matter.steps())} engine steps, "
          f"auto threads/step {auto_step_threads()}")  # fmt: skip
    print(f"{'measure':{LABEL_WIDTH}s} {'value':>10s}")
    rows = [
        (f"(a) reference model-only fps (eager, {args.frames} frames)", f"{ref_fps:10.2f}"),
        *(
            (f"(b) engine model-only fps, steps {how}, {threads} threads/step", f"{fps:10.2f}")
            for (threads, how), fps in engine_medians.items()
        ),
    ]
    for label, name in zip(("(c1)", "(c2)", "(c3)"), systems):
        rows.append((f"{label} end-to-end fps, {name}, {e2e_frames} frames", f"{e2e_fps[name]:10.2f}"))
        rows.append((f"{label} peak RSS, {name} (GiB)", f"{e2e_peak[name] / GIB:10.2f}"))
    rows.append((f"(d) peak RSS, {PRORES_ALPHA}, first {FLAT_FRAMES} frames (GiB)", f"{short_peak / GIB:10.2f}"))
    for name, value in rows:
        print(f"{name:{LABEL_WIDTH}s} {value}")
    for name, runs in e2e_runs.items():
        print(f"(c) runs, {name}: {', '.join(f'{fps:.2f}' for fps, _ in runs)} fps")
    print(f"(c) median of {args.e2e_repeats} rounds, the three commands in turn; model-only: median of {args.repeats}")
    print()
    ratios = [
        (f"{ALPHA_COMP} / {REFERENCE}, fps", e2e_fps[ALPHA_COMP] / e2e_fps[REFERENCE], ""),
        (f"{PRORES_ALPHA} / {REFERENCE}, fps", e2e_fps[PRORES_ALPHA] / e2e_fps[REFERENCE], "  (target >= 2)"),
        (f"{ALPHA_COMP} / {REFERENCE}, peak RSS", e2e_peak[ALPHA_COMP] / e2e_peak[REFERENCE], ""),
        (f"{PRORES_ALPHA} / {REFERENCE}, peak RSS", e2e_peak[PRORES_ALPHA] / e2e_peak[REFERENCE], ""),
        (f"{PRORES_ALPHA} end-to-end / own model-only (best of b)", e2e_fps[PRORES_ALPHA] / model_fps,
         "  (target >= 0.8)"),
        ("own model-only / reference model-only", model_fps / ref_fps, ""),
        (f"peak RSS, {PRORES_ALPHA}, {e2e_frames} frames / first {FLAT_FRAMES}",
         e2e_peak[PRORES_ALPHA] / max(short_peak, 1), "  (flat ~ 1)"),
    ]  # fmt: skip
    for name, ratio, note in ratios:
        print(f"{name:{LABEL_WIDTH}s} {ratio:9.2f}x{note}")


if __name__ == "__main__":
    main()
