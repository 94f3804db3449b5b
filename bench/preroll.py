"""Pre-roll study: how many warm-up frames a parallel segment needs to match a continuous render.

RVM (Lin et al., WACV 2022) carries ConvGRU state r1..r4 from frame to frame. In parallel mode
(:mod:`rvm_render.jobs.segments`) a segment that starts inside a shot cannot have the state of
the frames before it; it mattes ``N`` earlier frames from a fresh state and discards them. This
bench measures, on the real clips in ``$RVM_RENDER_SHARED/testdata/clips``, how far the alpha of
such a segment is from a continuous (unsplit) render, for several ``N``:

- ``first K``: mean and max ``|Δα|`` over the first ``K`` (8) frames after the boundary;
- ``segment``: the same over the first ``S`` (16) frames, the segment measured.

A segment starting at boundary ``B`` with pre-roll ``N`` is exactly a fresh render started at
frame ``B - N`` and looked at from ``B`` on, so one fresh run started at frame ``s`` gives the
segment at ``B = s + N`` for *every* ``N`` at once (one boundary per start and per ``N``).
The continuous reference and all fresh runs advance in lockstep over the decoded frames, one
``Matter`` swapping :class:`~rvm_render.engine.RecurrentState` between them: each frame is
decoded once per ratio and the continuous alpha is computed once and compared on the fly (no
recomputation, nothing stored).

Fresh starts default to frames 32 and 64 of each clip, so the continuous reference has at least
32 frames of history at every boundary (an earlier boundary would flatter small ``N``: both runs
would be young). Frames decoded per clip: ``max(starts) + max(N) + S`` (176 by default), frames
matted per clip and ratio: that plus ``len(starts) * (max(N) + S)`` (416).

Recommendation: the smallest ``N`` whose mean ``|Δα|`` over the first ``K`` frames is below
``1e-3`` for every clip and ratio (averaged over the clip's boundaries) and below
``1e-3 / MARGIN`` (``MARGIN`` = 2) over everything, and for which every larger ``N`` measured
does the same. (The worst single boundary is printed too; it stays near 1e-3 even at N = 64 on
the hand-held ``bedroom.mp4``: RVM's state keeps a long memory of the background.)

Run::

    RVM_RENDER_SHARED=/path/to/shared .venv/bin/python bench/preroll.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from rvm_render.engine import EngineOptions, RecurrentState, auto_downsample_ratio, open_matter
from rvm_render.media.probe import probe
from rvm_render.media.reader import open_reader

CLIPS = ("05_default_juggle.mp4", "01_dog.mp4", "bedroom.mp4")
PREROLLS = (0, 2, 4, 8, 16, 32, 64)
FIRST_FRAMES = 8  # K
SEGMENT_FRAMES = 16  # S
STARTS = (32, 64, 96)
TARGET_MEAN = 1e-3
MARGIN = 2.0


@dataclass(frozen=True, slots=True)
class BoundaryError:
    """|Δα| of one segment (fresh start at ``start``, boundary ``start + preroll``) vs continuous."""

    clip: str
    ratio: float
    start: int
    preroll: int
    first_mean: float
    first_max: float
    segment_mean: float
    segment_max: float


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    scale = 255.0 if rgb.dtype == np.uint8 else 65535.0
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div_(scale)


def measure_clip(
    clip: Path,
    ratio: float,
    weights: Path,
    *,
    prerolls: tuple[int, ...] = PREROLLS,
    starts: tuple[int, ...] = STARTS,
    first_frames: int = FIRST_FRAMES,
    segment_frames: int = SEGMENT_FRAMES,
) -> tuple[list[BoundaryError], int]:
    """Errors of every (start, preroll) segment of one clip at one ratio; and frames matted."""
    info = probe(clip)
    run_frames = max(prerolls) + segment_frames
    last = max(starts) + run_frames - 1
    if last >= info.frames:
        raise SystemExit(f"{clip.name}: needs frames 0..{last}, has {info.frames}; lower --starts")
    matter = open_matter(weights, EngineOptions(device="cpu", downsample_ratio=ratio))
    states: dict[str, RecurrentState] = {}
    # per start: per frame offset t (frames since the fresh start): (mean, max) |Δα|
    per_frame: dict[int, list[tuple[float, float]]] = {s: [] for s in starts}
    matted = 0
    with open_reader(info, 0, last) as frames:
        for frame in frames:
            src = _tensor(frame.rgb)
            t = frame.index
            matter.state = states.get("continuous", RecurrentState.initial())
            reference = matter.matte(src).pha[0, 0]
            states["continuous"] = matter.state
            matted += 1
            for s in starts:
                if not s <= t < s + run_frames:
                    continue
                if t == s:
                    matter.reset()
                else:
                    matter.state = states[f"fresh-{s}"]
                pha = matter.matte(src).pha[0, 0]
                states[f"fresh-{s}"] = matter.state
                matted += 1
                diff = (pha - reference).abs_()
                per_frame[s].append((float(diff.mean()), float(diff.max())))
    results: list[BoundaryError] = []
    for s in starts:
        errors = np.asarray(per_frame[s])
        for n in prerolls:
            first = errors[n : n + first_frames]
            segment = errors[n : n + segment_frames]
            results.append(BoundaryError(
                clip.name, ratio, s, n,
                float(first[:, 0].mean()), float(first[:, 1].max()),
                float(segment[:, 0].mean()), float(segment[:, 1].max()),
            ))
    return results, matted


def recommended_preroll(results: list[BoundaryError], prerolls: tuple[int, ...]) -> int | None:
    """Smallest N meeting the target, with every larger N measured meeting it too.

    Target: the first-K mean |Δα| (averaged over a clip's boundaries) is below TARGET_MEAN for
    every clip and ratio, and below TARGET_MEAN / MARGIN averaged over everything.
    """
    groups = {(r.clip, r.ratio) for r in results}

    def meets(n: int) -> bool:
        rows = [r for r in results if r.preroll == n]
        per_group = [np.mean([r.first_mean for r in rows if (r.clip, r.ratio) == g]) for g in groups]
        return max(per_group) < TARGET_MEAN and np.mean([r.first_mean for r in rows]) < TARGET_MEAN / MARGIN

    chosen: int | None = None
    for n in sorted(prerolls, reverse=True):
        if not meets(n):
            break
        chosen = n
    return chosen


def format_table(results: list[BoundaryError], prerolls: tuple[int, ...], first_frames: int,
                 segment_frames: int) -> str:
    """Per clip and ratio, then over everything: mean of means and max of maxes over boundaries."""
    lines = [
        f"{'clip':<22} {'ratio':>7} {'N':>3}  {f'first {first_frames}: mean':>16} {'max':>7}"
        f"  {f'segment {segment_frames}: mean':>18} {'max':>7}  {'worst first mean':>16}",
    ]
    groups = sorted({(r.clip, r.ratio) for r in results}, key=lambda g: (CLIPS.index(g[0])
                                                                         if g[0] in CLIPS else 99, -g[1]))
    for clip, ratio in [*groups, ("all", 0.0)]:
        for n in prerolls:
            rows = [r for r in results if r.preroll == n and (clip == "all" or (r.clip, r.ratio) == (clip, ratio))]
            label = "all" if clip == "all" else clip
            ratio_text = "both" if clip == "all" else f"{ratio:.4g}"
            lines.append(
                f"{label:<22} {ratio_text:>7} {n:>3}  {np.mean([r.first_mean for r in rows]):>16.2e} "
                f"{max(r.first_max for r in rows):>7.3f}  {np.mean([r.segment_mean for r in rows]):>18.2e} "
                f"{max(r.segment_max for r in rows):>7.3f}  {max(r.first_mean for r in rows):>16.2e}"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=os.environ.get("RVM_RENDER_SHARED"),
                        help="shared data folder (default: $RVM_RENDER_SHARED)")
    parser.add_argument("--clips", default=",".join(CLIPS), help="comma-separated clip names")
    parser.add_argument("--prerolls", default=",".join(map(str, PREROLLS)), help="N values")
    parser.add_argument("--starts", default=",".join(map(str, STARTS)), help="fresh-start frames per clip")
    parser.add_argument("--ratios", default="auto,0.25", help="downsample ratios ('auto' = the clip's)")
    parser.add_argument("--first-frames", type=int, default=FIRST_FRAMES, help="K")
    parser.add_argument("--segment-frames", type=int, default=SEGMENT_FRAMES, help="S")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a busy shared CPU, 2 OpenMP threads measured 4-20x slower)")
    parser.add_argument("--json", type=Path, default=None, help="also write every measurement here")
    args = parser.parse_args(argv)
    if args.shared is None:
        parser.error("set RVM_RENDER_SHARED or pass --shared")
    if args.threads:
        torch.set_num_threads(args.threads)
    prerolls = tuple(sorted(int(n) for n in args.prerolls.split(",")))
    starts = tuple(int(s) for s in args.starts.split(","))
    weights = args.shared / "models" / "rvm_mobilenetv3_tfjs_uint8"
    results: list[BoundaryError] = []
    started = time.perf_counter()
    for name in args.clips.split(","):
        clip = args.shared / "testdata" / "clips" / name
        info = probe(clip)
        ratios: list[float] = []
        for text in args.ratios.split(","):
            ratio = auto_downsample_ratio(info.height, info.width) if text == "auto" else float(text)
            if ratio not in ratios:
                ratios.append(ratio)
        for ratio in ratios:
            clip_started = time.perf_counter()
            rows, matted = measure_clip(clip, ratio, weights, prerolls=prerolls, starts=starts,
                                        first_frames=args.first_frames, segment_frames=args.segment_frames)
            results.extend(rows)
            elapsed = time.perf_counter() - clip_started
            print(f"{name} {info.width}x{info.height} ratio {ratio:.4g}: {matted} frames matted "
                  f"in {elapsed:.0f} s", file=sys.stderr, flush=True)
    print(f"\nPre-roll study: |Δα| of a parallel segment vs a continuous render "
          f"(fresh starts at frames {', '.join(map(str, starts))}; boundary = start + N; "
          f"fp32 CPU; {time.perf_counter() - started:.0f} s)\n")
    print(format_table(results, prerolls, args.first_frames, args.segment_frames))
    chosen = recommended_preroll(results, prerolls)
    target = (f"first-{args.first_frames} mean |Δα| below {TARGET_MEAN:.0e} for every clip and ratio and below "
              f"{TARGET_MEAN / MARGIN:.0e} (= {TARGET_MEAN:.0e} / {MARGIN:g}) over all")
    if chosen is None:
        print(f"no N measured (nor every larger one) keeps the {target}")
    else:
        print(f"recommended PREROLL_FRAMES = {chosen}: the smallest N (every larger N measured too) with {target}")
    if args.json:
        args.json.write_text(json.dumps({"results": [asdict(r) for r in results], "recommended": chosen}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
