"""A GPU render node, measured in one run: encoder ceilings, the network, rvm-render and the official reference.

    python bench/gpu_node.py [--shared DIR] [--frames 96] [--long-frames 480] [--encoder-frames 48]

Measures, on this machine and in this run, on the first --frames frames of 05_default_juggle.mp4
upscaled (bicubic) to 1920x1080 and 3840x2160 and encoded as H.264 (libx264 crf 18), at
downsample ratios 0.25 (HD) and 0.125 (4K):

  (a) the encoders alone with every core, on real frames converted beforehand (the ceilings the
      renders are held to): ProRes 4444 (prores_ks, FFmpeg AUTO threading: the thread count it
      got is printed) and the OpenEXR sequence writer (one pool thread per core);
  (b) the network alone, fp16, ``[1, 4]`` calls on frames already on the GPU, eager against
      CUDA-graph replays (``EngineOptions.network``), and the largest difference between them;
  (c) ``rvm-render matte --device cuda`` with ``--formats prores4444`` and ``--formats exr``
      (CUDA graphs, the default), timed from process start to exit, with the peak RSS of its
      process tree and the peak GPU memory used (NVML, whole device);
  (d) the official ``convert_video`` on CUDA (fp16, ``seq_chunk=12``), as reproduced by
      ``bench/reference_convert_video.py``, on the same clips;
  (e) the peak RSS of (c) ProRes 4444 at 4K on a --long-frames clip against the --frames one.

Then the issue's targets as ratios of figures from this run: each render against its encoder
ceiling (target >= 0.8), 4K ProRes 4444 against the reference (target >= 3), peak RSS long
against short (target within 10 %). Without CUDA it says so and exits 0. Runs from a staged
checkout (``../shared/tools/cuda-stage.sh``) with ``PYTHONPATH`` holding the wheels and the
repository, as ``bench/gpu_node.sh`` does.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import psutil
import torch

from rvm_render.engine import EngineOptions, open_matter
from rvm_render.media.probe import probe
from rvm_render.media.writers import OutputFormat, open_writer
from rvm_render.pipeline.device_path import exr_planes, prores4444_planes

sys.path.insert(0, str(Path(__file__).parent))
from matte_speed import tree_rss  # noqa: E402  (a sibling bench script)

CLIP = Path("testdata/clips/05_default_juggle.mp4")
WEIGHTS = Path("models/rvm_mobilenetv3_tfjs_uint8")
REFERENCE_SCRIPT = Path(__file__).with_name("reference_convert_video.py")
SIZES = {"HD": (1920, 1080, 0.25), "4K": (3840, 2160, 0.125)}
NETWORK_CALLS = 30
NETWORK_FRAMES_PER_CALL = 4
POLL_S = 0.05
RATE = Fraction(25)
GIB = 1 << 30
STARTUP_S = 15.0  # process start, imports, weights, CUDA context
CLIP_FPS_4K = 12.0  # bicubic upscale + libx264 veryfast at 3840x2160, all cores (a low guess)


@dataclass(frozen=True, slots=True)
class Run:
    """One timed command: frames per second start to exit, peak RSS and peak GPU memory in bytes."""

    fps: float
    peak_rss: int
    peak_gpu: int | None


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def upscaled_clip(source: Path, target: Path, width: int, height: int, frames: int) -> Path:
    """The source's frames (looped when it has fewer) scaled to width x height, H.264 crf 18."""
    with av.open(str(source)) as inp:
        decoded = [frame.reformat(width, height, "yuv420p", interpolation="BICUBIC")
                   for _, frame in zip(range(frames), inp.decode(video=0))]  # fmt: skip
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=RATE, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_type = "AUTO"
        for index, frame in zip(range(frames), itertools.cycle(decoded)):
            frame.pts, frame.time_base = index, 1 / RATE
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return target


def real_frames(clip: Path, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The clip's first frames as fgr ``[T, 3, H, W]`` and a soft matte of them ``[T, 1, H, W]`` (float32 0..1)."""
    with av.open(str(clip)) as container:
        rgb = [frame.to_ndarray(format="rgb24") for _, frame in zip(range(count), container.decode(video=0))]
    fgr = torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float() / 255
    pha = ((fgr[:, 1:2] - 0.3) * 3).clamp(0, 1)  # green stretched: solid regions and soft ramps
    return fgr, pha


def encoder_ceiling(fmt: OutputFormat, clip: Path, frames: int, folder: Path) -> tuple[float, str]:
    """Frames per second of one writer fed payloads converted beforehand; and its threading."""
    info = probe(clip)
    fgr, pha = real_frames(clip, min(frames, 8))
    payload = (prores4444_planes(fgr, pha, colorspace="bt709") if fmt is OutputFormat.PRORES4444
               else exr_planes(fgr, pha)).numpy()  # fmt: skip
    writer = open_writer(fmt, folder, f"ceiling_{fmt.value}", info, overwrite=True)
    started = time.perf_counter()
    for index in range(frames):
        writer.write_converted(index, payload[index % payload.shape[0]])
    threads = writer.encoder_threads if hasattr(writer, "encoder_threads") else ("pool", writer.workers)
    writer.close()
    return frames / (time.perf_counter() - started), f"{threads[0]} x{threads[1]}"


def network_fps(weights: Path, clip: Path, ratio: float, network: str) -> tuple[float, torch.Tensor]:
    """fp16 network-only fps on frames already on the GPU, ``[1, 4]`` calls; and the last batch's pha."""
    matter = open_matter(weights, EngineOptions(device="cuda", downsample_ratio=ratio, network=network))
    (step,) = matter.steps(on_device=True)
    fgr, _ = real_frames(clip, NETWORK_FRAMES_PER_CALL)
    src = fgr.cuda()
    for _ in range(3):  # first call eager from the empty state, then capture (CUDA graphs)
        step(src)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(NETWORK_CALLS):
        pha = step(src).pha
    torch.cuda.synchronize()
    return NETWORK_CALLS * NETWORK_FRAMES_PER_CALL / (time.perf_counter() - started), pha.float().cpu()


class GpuMemory:
    """Peak memory used on GPU 0 while it runs (NVML, whole device); None when NVML is missing."""

    def __init__(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._used = lambda: int(pynvml.nvmlDeviceGetMemoryInfo(self._handle).used)
        except Exception:  # nvidia-ml-py missing or no NVML: report n/a
            self._used = None

    def used(self) -> int | None:
        return self._used() if self._used is not None else None


def timed(command: list[str], frames: int, gpu: GpuMemory) -> Run:
    """Run ``command`` start to exit; fps over ``frames``, peak tree RSS, peak GPU memory."""
    started = time.perf_counter()
    process = psutil.Popen(command)
    peak_rss, peak_gpu = 0, gpu.used()
    while process.poll() is None:
        peak_rss = max(peak_rss, tree_rss(process))
        used = gpu.used()
        if used is not None and peak_gpu is not None:
            peak_gpu = max(peak_gpu, used)
        time.sleep(POLL_S)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"exited with {process.returncode}: {' '.join(command)}")
    return Run(frames / elapsed, peak_rss, peak_gpu)


def matte_command(clip: Path, out: Path, weights: Path, fmt: str, ratio: float) -> list[str]:
    return [sys.executable, "-m", "rvm_render.cli.main", "-q", "matte", str(clip), "-o", str(out),
            "--weights", str(weights), "--formats", fmt, "--device", "cuda",
            "--downsample-ratio", str(ratio), "--overwrite"]  # fmt: skip


def reference_command(clip: Path, out: Path, weights: Path, ratio: float) -> list[str]:
    return [sys.executable, str(REFERENCE_SCRIPT), str(clip), "--weights", str(weights),
            "--downsample-ratio", str(ratio), "--alpha", str(out / "pha.mp4"),
            "--composition", str(out / "com.mp4"), "--device", "cuda", "--fp16", "--seq-chunk", "12"]  # fmt: skip


def frames_within(left_s: float, fps: float, wanted: int, least: int) -> int:
    """Frames of the long 4K run that fit in ``left_s`` at ``fps`` (with its clip's encoding), at least ``least``.

    The clip is made at about ``CLIP_FPS_4K`` and each run spends about ``STARTUP_S`` starting.
    """
    fits = int((left_s - STARTUP_S) / (1 / fps + 1 / CLIP_FPS_4K))
    return max(least, min(wanted, fits))


def gib(size: int | None) -> str:
    return "n/a" if size is None else f"{size / GIB:.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("RVM_RENDER_SHARED", "../shared")))
    parser.add_argument("--frames", type=int, default=96, help="frames of the HD and 4K clips (default: 96)")
    parser.add_argument("--long-frames", type=int, default=480, help="frames of the 4K memory clip (default: 480)")
    parser.add_argument("--encoder-frames", type=int, default=48, help="frames per encoder ceiling (default: 48)")
    parser.add_argument("--budget-s", type=float, default=330, help="shorten (e) to end within this (default: 330)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device here: bench/gpu_node.py measures a GPU render node; nothing measured")
        return
    started = time.perf_counter()
    weights = args.shared / WEIGHTS
    log(f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} cores, torch {torch.__version__}, PyAV {av.__version__}")
    work = Path(tempfile.mkdtemp(prefix="rvm-gpu-node-"))
    gpu = GpuMemory()
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        log(line)

    try:
        clips = {}
        for name, (width, height, _) in SIZES.items():
            clips[name] = upscaled_clip(args.shared / CLIP, work / f"juggle_{name}.mp4", width, height, args.frames)
            log(f"clip {name}: {args.frames} frames at {width}x{height}")
        ceilings: dict[tuple[str, OutputFormat], float] = {}
        for name, clip in clips.items():
            for fmt in (OutputFormat.PRORES4444, OutputFormat.EXR):
                fps, threads = encoder_ceiling(fmt, clip, args.encoder_frames, work / "ceiling")
                ceilings[name, fmt] = fps
                report(f"(a) {fmt.value:<10} encoder alone {name}: {fps:6.2f} fps ({threads})")
        for name, clip in clips.items():
            ratio = SIZES[name][2]
            eager, eager_pha = network_fps(weights, clip, ratio, "eager")
            graphed, graphed_pha = network_fps(weights, clip, ratio, "cuda_graph")
            diff = (eager_pha - graphed_pha).abs().max().item()
            report(f"(b) network alone {name} fp16 [1, 4]: eager {eager:7.1f} fps, CUDA graph {graphed:7.1f} fps "
                   f"(x{graphed / eager:.2f}; max |pha diff| {diff:.2g})")  # fmt: skip
        renders: dict[tuple[str, str], Run] = {}
        for name, clip in clips.items():
            ratio = SIZES[name][2]
            for fmt in ("prores4444", "exr"):
                run = timed(matte_command(clip, work / f"out_{name}_{fmt}", weights, fmt, ratio), args.frames, gpu)
                renders[name, fmt] = run
                report(f"(c) rvm-render matte {fmt:<10} {name}: {run.fps:6.2f} fps, peak RSS {gib(run.peak_rss)}, "
                       f"peak GPU {gib(run.peak_gpu)}")  # fmt: skip
                shutil.rmtree(work / f"out_{name}_{fmt}", ignore_errors=True)
        references: dict[str, Run] = {}
        for name, clip in clips.items():
            run = timed(reference_command(clip, work, weights, SIZES[name][2]), args.frames, gpu)
            references[name] = run
            report(f"(d) official convert_video fp16 seq_chunk=12 {name}: {run.fps:6.2f} fps, "
                   f"peak RSS {gib(run.peak_rss)}, peak GPU {gib(run.peak_gpu)}")  # fmt: skip
        long_frames = frames_within(args.budget_s - (time.perf_counter() - started), renders["4K", "prores4444"].fps,
                                    args.long_frames, args.frames)  # fmt: skip
        if long_frames < args.long_frames:
            log(f"(e) shortened to {long_frames} frames to end within --budget-s {args.budget_s:.0f}")
        long_clip = upscaled_clip(args.shared / CLIP, work / "juggle_4K_long.mp4", *SIZES["4K"][:2], long_frames)
        long_run = timed(matte_command(long_clip, work / "out_long", weights, "prores4444", SIZES["4K"][2]),
                         long_frames, gpu)  # fmt: skip
        report(f"(e) rvm-render matte prores4444 4K, {long_frames} frames: {long_run.fps:6.2f} fps, "
               f"peak RSS {gib(long_run.peak_rss)}")  # fmt: skip

        print("\ntargets (figures of this run)")
        for name in SIZES:
            for fmt, key in (("prores4444", OutputFormat.PRORES4444), ("exr", OutputFormat.EXR)):
                share = renders[name, fmt].fps / ceilings[name, key]
                print(f"  {name} {fmt:<10} end to end / encoder ceiling: {share:5.2f} (target >= 0.8)")
        for name, target in (("4K", " (target >= 3)"), ("HD", "")):
            speedup = renders[name, "prores4444"].fps / references[name].fps
            print(f"  {name} prores4444 / official convert_video: {speedup:5.2f}{target}")
        growth = long_run.peak_rss / renders["4K", "prores4444"].peak_rss
        print(f"  peak RSS 4K prores4444, {long_frames} / {args.frames} frames: {growth:5.2f} (target <= 1.10)")
        print(f"\nbench/gpu_node.py took {time.perf_counter() - started:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
