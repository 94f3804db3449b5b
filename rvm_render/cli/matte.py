"""``rvm-render matte``: matte clips into deliverables, in one pass or in resumable segments.

A clip longer than ``--segment-frames`` (default
:data:`~rvm_render.jobs.segments.DEFAULT_SEGMENT_FRAMES`) is rendered in segments with
checkpoints (:func:`rvm_render.jobs.runner.render_segmented`), so running the same command
again after a crash resumes it; shorter clips, and ``--segment-frames 0``, take one pass
(:func:`rvm_render.pipeline.render_clip`). Naming ``--segment-frames``, ``--work-dir`` or
``--mode`` always segments. ``--workers N`` or ``--executor ray`` spread the segments of every
input over worker processes or Ray actors (:mod:`rvm_render.jobs.scheduler`,
:mod:`rvm_render.jobs.ray_executor`); their segments default to parallel mode.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rvm_render.cli.options import (
    FORMATS_TABLE,
    add_batch_options,
    add_render_options,
    batch_policy_from,
    engine_options_from,
    render_settings_from,
)
from rvm_render.cli.progress import ProgressBar
from rvm_render.errors import RvmRenderError

if TYPE_CHECKING:
    from rvm_render.pipeline import RenderRequest, RenderResult

log = logging.getLogger(__name__)

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "matte",
        help="matte clips into ProRes 4444 / EXR / matte / composite deliverables",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Matte each INPUT (a video file, or an image sequence as name.%04d.png, name.####.png or\n"
            "one of its frames) and write the selected deliverables plus OUTDIR/<stem>.rvm.json,\n"
            "which lists them. Outputs are written under temporary names and appear only when\n"
            "complete; SIGTERM and Ctrl-C remove them. An image sequence keeps its frame numbers:\n"
            "a plate numbered 1001-1100 gives mattes numbered 1001-1100, and --frames takes them.\n\n"
            f"Formats:\n{FORMATS_TABLE}"
        ),
        epilog=(
            "Downsample ratio: the network sees the frame scaled by this ratio and the guided-filter\n"
            "refiner restores full resolution. 'auto' scales the long side to at most 512 px, in steps\n"
            "of 1/32: 0.375 for 1280x720, 0.25 for 1920x1080, 0.125 for 3840x2160, the official RVM\n"
            "guide's ratios for portrait shots. For full-body shots that guide suggests 0.6 / 0.4 / 0.2;\n"
            "raise it for small or distant subjects.\n\n"
            "Weights are looked for in: --weights, $RVM_RENDER_WEIGHTS, 'weights' in config.yaml, the\n"
            "user cache dir, then the weights shipped with rvm_render (the published RVM MobileNetV3);\n"
            "'rvm-render weights' shows which a run uses and why. Accepted: official rvm_mobilenetv3.pth /\n"
            "rvm_resnet50.pth, or a TensorFlow.js model.json folder.\n\n"
            "Long clips: a clip longer than --segment-frames is rendered in segments, each\n"
            "checkpointed in the work dir (default OUTDIR/.rvm-work/<stem>); after a crash, Ctrl-C\n"
            "or kill, run the same command again to resume from the last finished segment. The\n"
            "result is identical to an uninterrupted run and, in sequential mode, to one pass.\n\n"
            "Examples:\n"
            "  rvm-render matte interview.mov                       # interview_matte.mov + EXRs beside it\n"
            "  rvm-render matte interview.mov -o mattes --formats prores4444,exr --downsample-ratio auto\n"
            "  rvm-render matte feature.mov -o mattes --segment-frames 2880 --work-dir /scratch/feature"
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", type=Path, help="clips to matte")
    parser.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=None,
        metavar="OUTDIR",
        help="folder for the deliverables (default: beside each input, as <clip folder>/<stem>_matte.mov ...)",
    )
    add_render_options(parser)
    add_batch_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rvm_render.engine import open_matter  # loaded when it runs: --help starts at once (cli.main)
    from rvm_render.engine.weights import resolve_weights_path
    from rvm_render.jobs.batch import check_distinct_outputs, probe_inputs, render_batch
    from rvm_render.pipeline import RenderRequest

    policy = batch_policy_from(args)
    settings = render_settings_from(args)
    options = engine_options_from(args)
    weights = resolve_weights_path(args.weights)
    first, last = args.frames if args.frames is not None else (None, None)
    requests = [
        RenderRequest(path, args.output_dir or path.parent, first_frame=first, last_frame=last) for path in args.inputs
    ]
    failed: list[RenderRequest] = []

    def report_failure(request: RenderRequest, err: RvmRenderError) -> None:
        failed.append(request)
        print(f"error: {err}", file=sys.stderr)

    inputs = probe_inputs(requests, report_failure)
    check_distinct_outputs(inputs)
    if inputs:
        matter = open_matter(weights, options, variant=args.variant)
        progress = None if args.quiet else ProgressBar()
        results = render_batch(
            inputs, settings, matter, policy, weights_path=weights, on_failure=report_failure, on_progress=progress
        )
        for result in results:
            _report(args, result)
    return _exit_code(len(failed), len(requests))


def _report(args: argparse.Namespace, result: RenderResult) -> None:
    if args.quiet:
        return
    if result.kept:
        print(f"{result.manifest_path}  ({result.frames} frames, up to date: kept from an earlier run)")
    else:
        print(f"{result.manifest_path}  ({result.frames} frames, {result.fps:.1f} fps)")


def _exit_code(failed: int, total: int) -> int:
    if failed:
        log.error("%d of %d inputs failed", failed, total)
        return 1
    return 0
