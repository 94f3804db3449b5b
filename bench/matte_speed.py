"""Matting speed and memory on 05_default_juggle.mp4 at ratio 0.375, measured in one run.

    python bench/matte_speed.py [--shared DIR] [--frames N]

Measures, on this machine and in this run:
  (a) model-only fps of an official-style reference: our MattingNetwork in eager fp32, not
      fused, frame by frame, called as the official README does
      (``fgr, pha, *rec = model(src, *rec, downsample_ratio)``), frames decoded beforehand;
  (b) model-only fps of the default engine (``Matter``), frames decoded beforehand;
  (c) end-to-end fps and peak RSS of ``rvm-render matte --formats prores4444,alpha`` over the
      whole clip (a subprocess, its process tree polled with psutil);
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

from rvm_render.engine import EngineOptions, Matter, open_matter
from rvm_render.engine.weights import network_for_weights, read_weights

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


def decoded_frames(clip: Path, count: int) -> list[torch.Tensor]:
    """The first ``count`` frames as ``[1, 3, H, W]`` float32 RGB 0..1."""
    frames = []
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            if len(frames) == count:
                break
            rgb = torch.from_numpy(frame.to_ndarray(format="rgb24"))
            frames.append(rgb.permute(2, 0, 1)[None].float().div(255).contiguous())
    return frames


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
    """The default engine, one frame per call as the pipeline feeds it; warm-up excluded."""
    matter.reset()
    for index, src in enumerate(frames):
        if index == WARMUP_FRAMES:
            started = time.perf_counter()
        matter.matte(src)
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
    args = parser.parse_args()
    if args.shared is None:
        parser.error("pass --shared DIR or set RVM_RENDER_SHARED")
    shared: Path = args.shared

    frames = decoded_frames(shared / CLIP, args.frames + WARMUP_FRAMES)
    loaded = read_weights(shared / WEIGHTS)
    reference = network_for_weights(loaded).eval()
    matter = open_matter(shared / WEIGHTS, EngineOptions(device="cpu", downsample_ratio=RATIO))
    matter.matte(frames[0])  # first use may export and cache the ONNX graph

    ref_runs, engine_runs = [], []
    for _ in range(args.repeats):  # interleaved, so machine load hits both alike
        ref_runs.append(reference_fps(reference, frames))
        engine_runs.append(engine_fps(matter, frames))
    ref_fps, model_fps = statistics.median(ref_runs), statistics.median(engine_runs)

    e2e_fps, e2e_peak = end_to_end(shared, None)
    _, short_peak = end_to_end(shared, FLAT_FRAMES)

    total = clip_frames(shared / CLIP)
    print(f"05_default_juggle.mp4, 1280x720, ratio {RATIO}, torch threads {torch.get_num_threads()}, "
          f"engine backend {matter.backend}")  # fmt: skip
    print(f"{'measure':48s} {'value':>10s}")
    rows = [
        (f"(a) reference model-only fps (eager, {args.frames} frames)", f"{ref_fps:10.2f}"),
        (f"(b) engine model-only fps ({matter.backend}, {args.frames} frames)", f"{model_fps:10.2f}"),
        (f"(c) end-to-end fps, prores4444+alpha, {total} frames", f"{e2e_fps:10.2f}"),
        (f"(c) peak RSS, {total} frames (GiB)", f"{e2e_peak / GIB:10.2f}"),
        (f"(d) peak RSS, first {FLAT_FRAMES} frames (GiB)", f"{short_peak / GIB:10.2f}"),
    ]
    for name, value in rows:
        print(f"{name:48s} {value}")
    print()
    print(f"end-to-end / issue baseline {ISSUE_E2E_FPS} fps      {e2e_fps / ISSUE_E2E_FPS:6.2f}x  (target >= 2)")
    print(f"end-to-end / own model-only                {e2e_fps / model_fps:6.2f}x  (target >= 0.8)")
    print(f"engine / reference model-only (this run)   {model_fps / ref_fps:6.2f}x")
    print(f"engine model-only / issue {ISSUE_MODEL_FPS} fps          {model_fps / ISSUE_MODEL_FPS:6.2f}x")
    print(f"peak RSS / issue {ISSUE_PEAK_RSS_GIB} GiB                  {e2e_peak / GIB / ISSUE_PEAK_RSS_GIB:6.2f}x")
    print(f"peak RSS whole clip / first {FLAT_FRAMES} frames       {e2e_peak / max(short_peak, 1):6.2f}x  (flat ~ 1)")
    print(f"(model-only runs: median of {args.repeats}; baselines {ISSUE_E2E_FPS} fps / {ISSUE_MODEL_FPS} fps / "
          f"{ISSUE_PEAK_RSS_GIB} GiB are quoted from issue 2, not measured here)")  # fmt: skip


if __name__ == "__main__":
    main()
