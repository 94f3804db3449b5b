"""``rvm-render eval``: score mattes against ground truth with the RVM paper's metrics.

PRED and GT are two mattes (movie with alpha, grey matte movie, image or EXR sequence, still,
or an ``.rvm.json`` manifest), or two folders of clips paired by name
(:func:`rvm_render.quality.matte_pairs`). Prints, per clip and as the mean over clips, MAD,
MSE, Grad, Conn and dtSSD (:mod:`rvm_render.quality.metrics`) over the whole clip and over its
first 16 frames, where a recurrent network is still converging; ``--json`` prints the same as
JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rvm_render.cli.progress import ProgressBar
from rvm_render.pipeline.progress import ProgressEvent
from rvm_render.quality.metrics import FIRST_FRAMES, METRIC_NAMES, SCALING, ClipScores, FrameScores, mean_scores

if TYPE_CHECKING:
    from rvm_render.quality import MatteClip

__all__ = ["add_parser", "run", "scores_table", "scores_document"]

_COLUMN = 9


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "eval",
        help="score mattes against ground truth (MAD, MSE, Grad, Conn, dtSSD)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Score the matte PRED against the ground truth GT with the metrics of the Robust Video Matting\n"
            "paper, as its official evaluation computes them: MAD and MSE x1e3, Grad (Gaussian derivatives,\n"
            "sigma 1.4) and Conn (threshold step 0.1) /1e3, dtSSD x1e2. Each clip's figure is the mean over\n"
            f"its frames, shown for the whole clip and for its first {FIRST_FRAMES} frames; the last line is the\n"
            "mean over clips.\n\n"
            "PRED and GT each name a matte: a movie (its alpha plane, e.g. ProRes 4444; else the luma of a\n"
            "grey matte), an image or EXR sequence (name.%04d.exr, name.####.png or one frame; channel A,\n"
            "else grey), a still image, or an rvm-render manifest <stem>.rvm.json (its EXR matte, else\n"
            "ProRes 4444, PNG, alpha movie). Or both name folders: clips are paired by name (a manifest's\n"
            "stem, a file's stem, a sequence's name, or a subfolder holding one clip)."
        ),
        epilog=(
            "Examples:\n"
            "  rvm-render eval mattes/take.rvm.json truth/take_alpha.%04d.png\n"
            "  rvm-render eval mattes/ truth/ --json > scores.json"
        ),
    )
    parser.add_argument("pred", type=Path, metavar="PRED", help="the predicted matte, or a folder of them")
    parser.add_argument("gt", type=Path, metavar="GT", help="the ground-truth matte, or a folder of them")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rvm_render.quality import matte_pairs, pair_scores  # loaded when it runs: --help starts at once (cli.main)

    pairs = matte_pairs(args.pred, args.gt)
    bar = ProgressBar() if not args.quiet and sys.stderr.isatty() else None  # no log lines in scripts
    scored: list[tuple[MatteClip, MatteClip, ClipScores]] = []
    for pred, gt in pairs:
        started = time.perf_counter()

        def report(frames_done: int, clip: MatteClip = pred, started: float = started) -> None:
            if bar is not None:
                bar(ProgressEvent(Path(clip.name), frames_done, clip.frames, time.perf_counter() - started))

        scored.append((pred, gt, pair_scores(pred, gt, on_frame=report)))
    if args.json:
        print(json.dumps(scores_document(scored), indent=2))
    else:
        print(scores_table([(pred.name, scores) for pred, _, scores in scored]))
    return 0


def _figures(scores: FrameScores) -> str:
    return "".join(f"{value:>{_COLUMN}.3f}" for value in scores.as_dict().values())


def scores_table(rows: list[tuple[str, ClipScores]]) -> str:
    """A table of clips (name, frames, the five figures whole and over the first frames) and their mean."""
    first_frames = max(scores.first_frames for _, scores in rows)
    names = [name for name, _ in rows]
    label = max(len("clip"), *(len(n) for n in names), len(f"mean ({len(rows)} clips)"))
    header = "".join(f"{m:>{_COLUMN}}" for m in METRIC_NAMES)
    span = _COLUMN * len(METRIC_NAMES)
    lines = [
        f"{'':<{label}} {'':>6}  {'whole clip':^{span}}  {f'first {first_frames} frames':^{span}}",
        f"{'clip':<{label}} {'frames':>6}  {header}  {header}",
    ]
    for name, scores in rows:
        lines.append(f"{name:<{label}} {scores.frames:>6}  {_figures(scores.whole)}  {_figures(scores.first)}")
    if len(rows) > 1:
        whole = mean_scores([s.whole for _, s in rows])
        first = mean_scores([s.first for _, s in rows])
        frames = sum(s.frames for _, s in rows)
        lines.append(f"{f'mean ({len(rows)} clips)':<{label}} {frames:>6}  {_figures(whole)}  {_figures(first)}")
    scaling = "; ".join(f"{m} {s}" for m, s in SCALING.items())
    lines.append(f"({scaling}, as the RVM paper reports them; means of per-frame values, frame 0's dtSSD is 0)")
    return "\n".join(lines)


def scores_document(scored: list[tuple[MatteClip, MatteClip, ClipScores]]) -> dict[str, Any]:
    """The JSON ``--json`` prints: per clip, and the mean over clips, whole and over the first frames."""
    clips = [
        {
            "name": pred.name,
            "pred": str(pred.path),
            "gt": str(gt.path),
            "frames": scores.frames,
            "width": pred.width,
            "height": pred.height,
            "whole": scores.whole.as_dict(),
            "first": {"frames": scores.first_frames, **scores.first.as_dict()},
        }
        for pred, gt, scores in scored
    ]
    all_scores = [scores for _, _, scores in scored]
    return {
        "scaling": dict(SCALING),
        "first_frames": FIRST_FRAMES,
        "clips": clips,
        "mean": {
            "clips": len(all_scores),
            "whole": mean_scores([s.whole for s in all_scores]).as_dict(),
            "first": mean_scores([s.first for s in all_scores]).as_dict(),
        },
    }
