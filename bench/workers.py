"""Speed-up of local workers: one parallel plan rendered by 1 and by 2 CPU worker processes.

Renders the same clip range, split into independent segments (parallel mode, no pre-roll, so
every configuration mattes exactly the same frames), with :func:`run_segments_locally`:

- 1 worker, torch's default threads (all cores in one process);
- 1 worker, 1 thread;
- 2 workers, cores split between them (1 thread each on a 2-core machine).

Wall time includes starting the worker processes and opening the model in each (a few
seconds), as a real run does. The machine's load average is printed: on a shared machine other
processes take cores too, and the numbers move with them.

Run::

    RVM_RENDER_SHARED=/path/to/shared .venv/bin/python bench/workers.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from rvm_render.engine import EngineOptions
from rvm_render.jobs.runner import prepare_work_dir
from rvm_render.jobs.scheduler import MatterSpec, WorkerSlot, local_worker_slots, run_segments_locally
from rvm_render.jobs.segments import SegmentPolicy
from rvm_render.media.writers import OutputFormat
from rvm_render.pipeline import RenderRequest, RenderSettings


def _render(clip: Path, frames: tuple[int, int], segment_frames: int, spec: MatterSpec,
            slots: list[WorkerSlot]) -> float:
    """Wall seconds to plan nothing new and render every segment with ``slots``."""
    matter = spec.open("cpu")
    settings = RenderSettings(formats=(OutputFormat.EXR,))
    with tempfile.TemporaryDirectory(prefix="rvm-bench-") as folder:
        request = RenderRequest(clip, Path(folder), *frames)
        work = prepare_work_dir(request, settings, matter, SegmentPolicy(segment_frames, 0), mode="parallel",
                                weights_path=spec.weights)
        started = time.perf_counter()
        run_segments_locally([work], spec, slots=slots)
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=os.environ.get("RVM_RENDER_SHARED"),
                        help="shared data folder (default: $RVM_RENDER_SHARED)")
    parser.add_argument("--clip", default="bedroom.mp4")
    parser.add_argument("--frames", default="0-95", help="FIRST-LAST (inclusive)")
    parser.add_argument("--segment-frames", type=int, default=24)
    parser.add_argument("--ratio", type=float, default=0.25)
    args = parser.parse_args(argv)
    if args.shared is None:
        parser.error("set RVM_RENDER_SHARED or pass --shared")
    first, last = (int(part) for part in args.frames.split("-"))
    clip = args.shared / "testdata" / "clips" / args.clip
    spec = MatterSpec.resolved(args.shared / "models" / "rvm_mobilenetv3_tfjs_uint8",
                               EngineOptions(device="cpu", downsample_ratio=args.ratio))
    frames = last - first + 1
    configs = [
        ("1 worker, default threads", [WorkerSlot("cpu")]),
        ("1 worker, 1 thread", [WorkerSlot("cpu", 1)]),
        (f"{2} workers, cores split", local_worker_slots(2, device="cpu")),
    ]
    print(f"{args.clip} frames {first}-{last} ({frames}), segments of {args.segment_frames}, ratio {args.ratio}, "
          f"{os.cpu_count()} CPU cores; load average before: {os.getloadavg()[0]:.1f}")
    times: dict[str, float] = {}
    for name, slots in configs:
        times[name] = _render(clip, (first, last), args.segment_frames, spec, slots)
        threads = ", ".join(str(s.threads or "default") for s in slots)
        print(f"  {name:<28} threads {threads:<10} {times[name]:7.1f} s  {frames / times[name]:5.2f} fps",
              flush=True)
    baseline, one_thread, two = times[configs[0][0]], times[configs[1][0]], times[configs[2][0]]
    print(f"speed-up of 2 workers: {baseline / two:.2f}x over 1 worker with default threads, "
          f"{one_thread / two:.2f}x over 1 worker with 1 thread; load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
