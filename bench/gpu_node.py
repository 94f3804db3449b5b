"""A GPU render node, measured in one run: encoder ceilings, the network, rvm-render and the official reference.

    python bench/gpu_node.py [--shared DIR] [--frames 96] [--long-frames 480] [--check-on-cpu]

Measures, on this machine and in this run, on the first --frames frames of 05_default_juggle.mp4
upscaled (bicubic) to 1920x1080 and 3840x2160 and encoded as H.264 (libx264 crf 18), at
downsample ratios 0.25 (HD) and 0.125 (4K):

  (a) the encoders alone with every core, on real frames converted beforehand (the ceilings the
      renders are held to), --frames frames each, opened to closed as a render's writer is:
      ProRes 4444 (prores_ks, FFmpeg AUTO threading: the thread count it got is printed) and
      the OpenEXR sequence writer (one pool thread per core);
  (b) the network alone, fp16, ``[1, 4]`` calls on frames already on the GPU, eager against
      CUDA-graph replays (``EngineOptions.network``), and the largest difference between them;
  (c) ``rvm-render matte --device cuda`` with ``--formats prores4444`` and ``--formats exr``
      (CUDA graphs, the default), timed from process start to exit, with the peak RSS of its
      process tree and the peak GPU memory used (NVML, whole device); and where the time before
      the first frame went, from its log (engine ready, first frames written);
  (d) the official ``convert_video`` on CUDA (fp16, ``seq_chunk=12``), as reproduced by
      ``bench/reference_convert_video.py``, on the same clips;
  (e) the render node as it runs: an ``rvm-render daemon`` on the GPU (engine loaded once), each
      clip and format of (c) submitted twice through the API, timed from submit to done (the
      second job of a shape finds its CUDA graph captured);
  (f) the peak RSS of (c) ProRes 4444 at 4K on a --long-frames clip against the --frames one.

Then the issue's targets as ratios of figures from this run: each render, as a process (c) and
on the node (e), against its encoder ceiling (target >= 0.8), 4K ProRes 4444 against the
reference (target >= 3), peak RSS long against short (target within 10 %). Without CUDA it says
so and exits 0. Runs from a staged checkout (``../shared/tools/cuda-stage.sh``) with
``PYTHONPATH`` holding the wheels and the repository, as ``bench/gpu_node.sh`` does.

``--check-on-cpu`` runs every step on the CPU on small clips (eager network, fp32 reference),
so the script itself can be checked where no GPU is; its figures say nothing about a GPU node.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
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
import yaml

from rvm_render.api.client import RvmRenderClient
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
CHECK_SIZES = {"HD": (320, 180, 0.5), "4K": (640, 360, 0.25)}  # --check-on-cpu
FORMATS = ("prores4444", "exr")
NODE_TOKEN = "gpu-node-bench"
#: The log lines of ``rvm-render -v matte`` that say where its time went before and while rendering.
STARTUP_LINES = re.compile(r"engine ready on .*|matted '.*")
#: The lines of the daemon's log (``-v``) that say where a job's time went: the cut pass, the render, assembly.
NODE_JOB_LINES = re.compile(r"\d+ shot cuts in .*|matted '.*|assembled '.*")
NETWORK_CALLS = 30
NETWORK_FRAMES_PER_CALL = 4
POLL_S = 0.05
RATE = Fraction(25)
GIB = 1 << 30
STARTUP_S = 15.0  # process start, imports, weights, CUDA context
CLIP_FPS_4K = 12.0  # bicubic upscale + libx264 veryfast at 3840x2160, all cores (a low guess)


@dataclass(frozen=True, slots=True)
class Run:
    """One timed command: frames per second start to exit, peak RSS and peak GPU memory in bytes,
    and the lines of its log that say where the time went."""

    fps: float
    peak_rss: int
    peak_gpu: int | None
    timings: tuple[str, ...] = ()


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


def network_fps(weights: Path, clip: Path, ratio: float, network: str, device: str) -> tuple[float, torch.Tensor]:
    """Network-only fps on frames already on the device, ``[1, 4]`` calls; and the last batch's pha."""
    options = EngineOptions(device=device, downsample_ratio=ratio, network=network, backend="torch")
    matter = open_matter(weights, options)
    (step,) = matter.steps(on_device=True)
    fgr, _ = real_frames(clip, NETWORK_FRAMES_PER_CALL)
    src = fgr.to(device)
    for _ in range(3):  # eager from the empty state, eager once with a state, then capture (CUDA graphs)
        step(src)
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    synchronize()
    started = time.perf_counter()
    for _ in range(NETWORK_CALLS):
        pha = step(src).pha
    synchronize()
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


def timed(command: list[str], frames: int, gpu: GpuMemory, log_file: Path) -> Run:
    """Run ``command`` start to exit; fps over ``frames``, peak tree RSS, peak GPU memory, its timing lines."""
    started = time.perf_counter()
    with log_file.open("w") as output:
        process = psutil.Popen(command, stdout=output, stderr=output)
        peak_rss, peak_gpu = 0, gpu.used()
        while process.poll() is None:
            peak_rss = max(peak_rss, tree_rss(process))
            used = gpu.used()
            if used is not None and peak_gpu is not None:
                peak_gpu = max(peak_gpu, used)
            time.sleep(POLL_S)
    elapsed = time.perf_counter() - started
    text = log_file.read_text(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"exited with {process.returncode}: {' '.join(command)}\n{text[-4000:]}")
    return Run(frames / elapsed, peak_rss, peak_gpu, tuple(m.group(0) for m in STARTUP_LINES.finditer(text)))


@dataclass(frozen=True, slots=True)
class Target:
    """Where the commands run: the GPU node, or the CPU for ``--check-on-cpu``."""

    device: str
    sizes: dict[str, tuple[int, int, float]]

    @property
    def on_cuda(self) -> bool:
        return self.device == "cuda"

    def matte_command(self, clip: Path, out: Path, weights: Path, fmt: str, ratio: float) -> list[str]:
        return [sys.executable, "-m", "rvm_render.cli.main", "-v", "matte", str(clip), "-o", str(out),
                "--weights", str(weights), "--formats", fmt, "--device", self.device,
                "--downsample-ratio", str(ratio), "--overwrite"]  # fmt: skip

    def reference_command(self, clip: Path, out: Path, weights: Path, ratio: float) -> list[str]:
        half = ["--fp16", "--seq-chunk", "12"] if self.on_cuda else []
        return [sys.executable, str(REFERENCE_SCRIPT), str(clip), "--weights", str(weights),
                "--downsample-ratio", str(ratio), "--alpha", str(out / "pha.mp4"),
                "--composition", str(out / "com.mp4"), "--device", self.device, *half]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RenderNode:
    """An ``rvm-render daemon`` on ``device``, its engine loaded, taking jobs through its API."""

    def __init__(self, folder: Path, media_root: Path, weights: Path, device: str) -> None:
        port = free_port()
        folder.mkdir()
        config = {"state_dir": str(folder / "state"), "media_roots": [str(media_root)], "device": device,
                  "weights": str(weights), "api": {"port": port, "token": NODE_TOKEN}}  # fmt: skip
        (folder / "node.yaml").write_text(yaml.safe_dump(config))
        self.log_path = folder / "node.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "rvm_render.cli.main", "-v", "daemon", "--config",
                                         str(folder / "node.yaml")], stdout=self._log, stderr=self._log)  # fmt: skip
        self.client = RvmRenderClient(f"http://127.0.0.1:{port}", NODE_TOKEN, timeout_s=10)
        deadline = time.monotonic() + 180
        while True:
            try:
                self.client.health()
                return
            except Exception:  # not up yet (connection refused), or it died: said below
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = (folder / "node.log").read_text()[-4000:]
                    raise SystemExit(f"the daemon did not come up: {tail}") from None
                time.sleep(0.1)

    def render(self, clip: Path, out: Path, fmt: str, ratio: float, frames: int) -> tuple[float, list[str]]:
        """Submit ``clip`` as a job and wait for it; frames per second from submit to done, and where its time went."""
        logged = self.log_path.stat().st_size
        started = time.perf_counter()
        job = self.client.submit(str(clip), output_dir=str(out), preset={"formats": [fmt], "downsample_ratio": ratio})
        job = self.client.wait(job["id"], poll_s=0.02, timeout_s=300)
        elapsed = time.perf_counter() - started
        if job["state"] != "done":
            raise SystemExit(f"node job {job['id']} ended {job['state']}: {job['error']}")
        with self.log_path.open(errors="replace") as log_file:
            log_file.seek(logged)
            phases = [m.group(0) for m in NODE_JOB_LINES.finditer(log_file.read())]
        return frames / elapsed, phases

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


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
    parser.add_argument("--budget-s", type=float, default=330, help="shorten (f) to end within this (default: 330)")
    parser.add_argument("--check-on-cpu", action="store_true",
                        help="check this script on the CPU with small clips (figures mean nothing)")  # fmt: skip
    args = parser.parse_args()
    if args.check_on_cpu:
        target = Target("cpu", CHECK_SIZES)
    elif torch.cuda.is_available():
        target = Target("cuda", SIZES)
    else:
        print("no CUDA device here: bench/gpu_node.py measures a GPU render node; nothing measured")
        return
    started = time.perf_counter()
    weights = args.shared / WEIGHTS
    device_name = torch.cuda.get_device_name(0) if target.on_cuda else "CPU (--check-on-cpu: figures mean nothing)"
    log(f"{device_name}, {os.cpu_count()} cores, torch {torch.__version__}, PyAV {av.__version__}")
    work = Path(tempfile.mkdtemp(prefix="rvm-gpu-node-"))
    gpu = GpuMemory()
    try:
        clips = {}
        for name, (width, height, _) in target.sizes.items():
            clips[name] = upscaled_clip(args.shared / CLIP, work / f"juggle_{name}.mp4", width, height, args.frames)
            log(f"clip {name}: {args.frames} frames at {width}x{height}")
        ceilings: dict[tuple[str, str], float] = {}
        for name, clip in clips.items():
            for fmt in FORMATS:
                fps, threads = encoder_ceiling(OutputFormat(fmt), clip, args.frames, work / "ceiling")
                ceilings[name, fmt] = fps
                log(f"(a) {fmt:<10} encoder alone {name}: {fps:6.2f} fps ({threads})")
        for name, clip in clips.items():
            ratio = target.sizes[name][2]
            if not target.on_cuda:
                eager, _ = network_fps(weights, clip, ratio, "eager", target.device)
                log(f"(b) network alone {name} fp32 [1, 4]: eager {eager:7.1f} fps (no CUDA graphs off CUDA)")
                continue
            eager, eager_pha = network_fps(weights, clip, ratio, "eager", target.device)
            graphed, graphed_pha = network_fps(weights, clip, ratio, "cuda_graph", target.device)
            diff = (eager_pha - graphed_pha).abs().max().item()
            log(f"(b) network alone {name} fp16 [1, 4]: eager {eager:7.1f} fps, CUDA graph {graphed:7.1f} fps "
                f"(x{graphed / eager:.2f}; max |pha diff| {diff:.2g})")  # fmt: skip
        renders: dict[tuple[str, str], Run] = {}
        for name, clip in clips.items():
            ratio = target.sizes[name][2]
            for fmt in FORMATS:
                out = work / f"out_{name}_{fmt}"
                run = timed(target.matte_command(clip, out, weights, fmt, ratio), args.frames, gpu, work / "matte.log")
                renders[name, fmt] = run
                log(f"(c) rvm-render matte {fmt:<10} {name}: {run.fps:6.2f} fps, peak RSS {gib(run.peak_rss)}, "
                    f"peak GPU {gib(run.peak_gpu)}")  # fmt: skip
                for timing in run.timings:
                    log(f"      {timing}")
                shutil.rmtree(out, ignore_errors=True)
        references: dict[str, Run] = {}
        for name, clip in clips.items():
            run = timed(target.reference_command(clip, work, weights, target.sizes[name][2]), args.frames, gpu,
                        work / "reference.log")  # fmt: skip
            references[name] = run
            log(f"(d) official convert_video{' fp16 seq_chunk=12' if target.on_cuda else ''} {name}: "
                f"{run.fps:6.2f} fps, peak RSS {gib(run.peak_rss)}, peak GPU {gib(run.peak_gpu)}")  # fmt: skip
        node_started = time.perf_counter()
        node = RenderNode(work / "node", work, weights, target.device)
        log(f"(e) render node up in {time.perf_counter() - node_started:.1f} s")
        on_node: dict[tuple[str, str], float] = {}
        try:
            for name, clip in clips.items():
                for fmt in FORMATS:
                    (first, _), (again, phases) = (
                        node.render(clip, work / "node" / f"out_{name}_{fmt}_{round_}", fmt, target.sizes[name][2],
                                    args.frames) for round_ in (1, 2))  # fmt: skip
                    on_node[name, fmt] = again
                    log(f"(e) render node {fmt:<10} {name}: {again:6.2f} fps submit to done "
                        f"(the shape's first job {first:6.2f} fps)")  # fmt: skip
                    for phase in phases:
                        log(f"      {phase}")
        finally:
            node.stop()
        long_frames = frames_within(args.budget_s - (time.perf_counter() - started), renders["4K", "prores4444"].fps,
                                    args.long_frames, args.frames)  # fmt: skip
        if long_frames < args.long_frames:
            log(f"(f) shortened to {long_frames} frames to end within --budget-s {args.budget_s:.0f}")
        long_clip = upscaled_clip(args.shared / CLIP, work / "juggle_4K_long.mp4", *target.sizes["4K"][:2], long_frames)
        long_run = timed(target.matte_command(long_clip, work / "out_long", weights, "prores4444",
                                              target.sizes["4K"][2]), long_frames, gpu, work / "long.log")  # fmt: skip
        log(f"(f) rvm-render matte prores4444 4K, {long_frames} frames: {long_run.fps:6.2f} fps, "
            f"peak RSS {gib(long_run.peak_rss)}")  # fmt: skip

        print("\ntargets (figures of this run)")
        for name in target.sizes:
            for fmt in FORMATS:
                ceiling = ceilings[name, fmt]
                print(f"  {name} {fmt:<10} / encoder ceiling: process start to exit "
                      f"{renders[name, fmt].fps / ceiling:5.2f}, render node submit to done "
                      f"{on_node[name, fmt] / ceiling:5.2f} (target >= 0.8)")  # fmt: skip
        for name, target_text in (("4K", " (target >= 3)"), ("HD", "")):
            speedup = renders[name, "prores4444"].fps / references[name].fps
            node_speedup = on_node[name, "prores4444"] / references[name].fps
            print(f"  {name} prores4444 / official convert_video: process {speedup:5.2f}, "
                  f"render node {node_speedup:5.2f}{target_text}")  # fmt: skip
        growth = long_run.peak_rss / renders["4K", "prores4444"].peak_rss
        print(f"  peak RSS 4K prores4444, {long_frames} / {args.frames} frames: {growth:5.2f} (target <= 1.10)")
        print(f"\nbench/gpu_node.py took {time.perf_counter() - started:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
