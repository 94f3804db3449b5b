"""What the warm start (``--warmup N``) buys and costs, for N in 0, 4, 8, 16, 32; and the default it implies.

    python bench/warmup.py [--shared DIR] [--counts 0,4,8,16,32] [--clips 12] [--frames 48]
                           [--shared-frames 64] [--ratio 0.5] [--save]

Two measurements, in one run:

1. **Composite benchmark** (true alpha): the clips of ``bench/quality.py`` (Composition-1k
   foregrounds moving over moving backgrounds), matted at ``--ratio`` (0.5, the best ratio of
   ``bench/quality.py`` at their 320 px) by the pipeline of ``rvm-render matte --warmup N``, scored
   against their true alpha (MAD and dtSSD, first 16 frames and whole clip, mean over the clips
   with background in view, as ``bench/quality.py`` reports them).
2. **Shared clips** (no true alpha): the first ``--shared-frames`` frames of each clip in
   ``testdata/clips``, at their ``auto`` ratio, against the *converged* matte: the same frames
   matted a second time, straight after a first pass over them (the state has then seen the
   whole shot). Run on the engine directly (the warm start there is the reversed frames run
   first, which ``tests/integration/test_warm_start.py`` shows equals the pipeline's).

Cost: the seconds the warm start adds per shot start, and as a share of matting the clip.

The default: the smallest N > 0 that lowers first-16-frame MAD *and* dtSSD against N = 0 in both
measurements, and raises neither whole-clip figure by more than 1 %; if none does, 0. ``--save``
writes the report to ``bench/results/warmup.txt``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch
from quality import FILL_LIMIT, build_clips, render_mattes, scored_renders  # bench/quality.py

from rvm_render.engine import EngineOptions, Matter, open_matter
from rvm_render.media import open_reader
from rvm_render.media.probe import probe
from rvm_render.pipeline.render import DEFAULT_WARMUP_FRAMES
from rvm_render.quality import FIRST_FRAMES, mean_scores
from rvm_render.quality.metrics import dtssd, mad

COUNTS = (0, 4, 8, 16, 32)
RESULTS = Path(__file__).resolve().parent / "results" / "warmup.txt"
#: Frames per engine call on the shared clips (memory bound; the state flows across calls).
CHUNK = 8
#: How much worse a whole-clip figure may get for a warm start to count as a win (noise).
WHOLE_TOLERANCE = 0.01


@dataclass(frozen=True)
class Figures:
    """MAD (x1e3) and dtSSD (x1e2), over the first 16 frames and the whole clip; warm-start seconds per shot."""

    first_mad: float
    first_dtssd: float
    whole_mad: float
    whole_dtssd: float
    cost_s: float
    cost_share: float

    def wins_over(self, cold: Figures) -> bool:
        return (self.first_mad < cold.first_mad and self.first_dtssd < cold.first_dtssd
                and self.whole_mad <= cold.whole_mad * (1 + WHOLE_TOLERANCE)
                and self.whole_dtssd <= cold.whole_dtssd * (1 + WHOLE_TOLERANCE))  # fmt: skip


# --- 1. composites with true alpha ----------------------------------------------------------


def composite_figures(shared: Path, work: Path, counts: list[int], clips: int, frames: int, ratio: str,
                      device: str) -> dict[int, Figures]:  # fmt: skip
    built = build_clips(shared, work, clips, frames)
    in_view = {c.name for c in built if c.fill < FILL_LIMIT} or {c.name for c in built}  # few clips: all
    seconds, scores = {}, {}
    for count in counts:
        out_dir = work / "renders" / f"warmup-{count}"
        seconds[count] = render_mattes(built, out_dir, ratio, device, warmup=count) / len(built)
        scores[count] = [s for name, s in scored_renders(out_dir, work / "gt").items() if name in in_view]
        print(f"composites, warmup {count}: {seconds[count] * len(built):.0f} s", file=sys.stderr, flush=True)
    figures = {}
    for count in counts:  # cost: the time over the cold render (counts holds 0), per clip
        first = mean_scores([s.first for s in scores[count]])
        whole = mean_scores([s.whole for s in scores[count]])
        extra = max(0.0, seconds[count] - seconds[0])
        figures[count] = Figures(first.mad, first.dtssd, whole.mad, whole.dtssd, extra, extra / seconds[0])
    return figures


# --- 2. shared clips against their converged matte -------------------------------------------


def _alphas(matter: Matter, src: torch.Tensor) -> np.ndarray:
    return np.concatenate([matter.matte(src[i : i + CHUNK]).pha[:, 0].numpy() for i in range(0, len(src), CHUNK)])


def _figures_against(pred: np.ndarray, reference: np.ndarray) -> tuple[float, float, float, float]:
    """First-16 and whole-clip MAD and dtSSD of ``pred`` against ``reference``, as rvm-render eval means them."""
    mads = [mad(p, r) for p, r in zip(pred, reference)]
    dts = [0.0] + [dtssd(pred[t], pred[t - 1], reference[t], reference[t - 1]) for t in range(1, len(pred))]
    first = slice(0, FIRST_FRAMES)
    return float(np.mean(mads[first])), float(np.mean(dts[first])), float(np.mean(mads)), float(np.mean(dts))


def shared_clip_figures(shared: Path, counts: list[int], frames: int, device: str) -> dict[int, Figures]:
    matter = open_matter(None, EngineOptions(device=device, downsample_ratio="auto"))
    per_count: dict[int, list[tuple[float, ...]]] = {count: [] for count in counts}
    for clip in sorted((shared / "testdata" / "clips").glob("*.mp4")):
        info = probe(clip)
        with open_reader(info, 0, min(frames, info.frames) - 1) as reader:
            src = torch.stack([torch.from_numpy(f.rgb).permute(2, 0, 1) for f in reader]).float() / 255
        matter.reset()
        started = time.perf_counter()
        _alphas(matter, src)  # the first pass: the state sees the whole shot
        clip_s = time.perf_counter() - started
        reference = _alphas(matter, src)
        for count in counts:
            matter.reset()
            started = time.perf_counter()
            if count:
                _alphas(matter, src[:count].flip(0))
            cost = time.perf_counter() - started
            figures = _figures_against(_alphas(matter, src), reference)
            per_count[count].append((*figures, cost, cost / clip_s))
        print(f"shared clip {clip.name}: done", file=sys.stderr, flush=True)
    return {count: Figures(*np.mean(np.array(rows), axis=0).tolist()) for count, rows in per_count.items()}


# --- report ---------------------------------------------------------------------------------


def table(title: str, figures: dict[int, Figures]) -> str:
    lines = [title, f"{'N':>4}  {'MAD 1-16':>9} {'dtSSD 1-16':>10}  {'MAD all':>8} {'dtSSD all':>9}  "
                    f"{'cost s/shot':>11} {'cost share':>10}  wins"]  # fmt: skip
    cold = figures.get(0)
    for count, f in figures.items():
        wins = "-" if cold is None or count == 0 else ("yes" if f.wins_over(cold) else "no")
        lines.append(f"{count:>4}  {f.first_mad:>9.3f} {f.first_dtssd:>10.3f}  {f.whole_mad:>8.3f} "
                     f"{f.whole_dtssd:>9.3f}  {f.cost_s:>11.2f} {f.cost_share:>9.0%}  {wins}")  # fmt: skip
    return "\n".join(lines)


def default_count(composites: dict[int, Figures], clips: dict[int, Figures]) -> int:
    """The smallest N that wins in both measurements (module doc), else 0."""
    for count in sorted(composites):
        if count and composites[count].wins_over(composites[0]) and clips[count].wins_over(clips[0]):
            return count
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_shared = os.environ.get("RVM_RENDER_SHARED") or str(Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--shared", type=Path, default=Path(default_shared),
                        help="shared data folder (default: $RVM_RENDER_SHARED, else ../shared beside the checkout)")
    parser.add_argument("--counts", default=",".join(map(str, COUNTS)), help="warm-start frame counts (with 0)")
    parser.add_argument("--clips", type=int, default=12, help="composite clips (max 12)")
    parser.add_argument("--frames", type=int, default=48, help="frames per composite clip")
    parser.add_argument("--shared-frames", type=int, default=64, help="frames of each shared clip")
    parser.add_argument("--ratio", default="0.5", help="downsample ratio of the composites")
    parser.add_argument("--device", default="auto", help="engine device (auto, cpu, cuda:N)")
    parser.add_argument("--save", action="store_true", help=f"also write the report to {RESULTS}")
    args = parser.parse_args(argv)
    counts = sorted({int(c) for c in args.counts.split(",")} | {0})
    if not (args.shared / "testdata" / "gt").is_dir():
        parser.error(f"no testdata/gt in '{args.shared}'; set RVM_RENDER_SHARED or pass --shared")
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="rvm-warmup-"))
    try:
        composites = composite_figures(args.shared, work, counts, args.clips, args.frames, args.ratio, args.device)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    clips = shared_clip_figures(args.shared, counts, args.shared_frames, args.device)
    chosen = default_count(composites, clips)
    text = "\n".join([
        f"# bench/warmup.py, {date.today().isoformat()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "MAD x1e3, dtSSD x1e2 (lower is better); 1-16: the first 16 frames, all: the whole clip; cost: warm-start "
        "seconds per shot start and its share of matting the clip; wins: lower MAD and dtSSD on frames 1-16, "
        f"whole clip not worse by more than {WHOLE_TOLERANCE:.0%}",
        "",
        table(f"composites with true alpha ({args.frames} frames, ratio {args.ratio}, the clips with background in "
              "view):", composites),
        "",
        table(f"shared clips, first {args.shared_frames} frames at ratio auto, against their converged matte (a "
              "second pass):", clips),
        "",
        f"default --warmup: {chosen} (the smallest N that wins in both; now {DEFAULT_WARMUP_FRAMES})",
        f"({time.perf_counter() - started:.0f} s in all)",
    ])  # fmt: skip
    print(text)
    if args.save:
        RESULTS.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
