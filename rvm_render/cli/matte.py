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

from rvm_render.cli.options import (
    FORMAT_HELP,
    add_render_options,
    engine_options_from,
    parse_frame_count,
    parse_worker_count,
    render_settings_from,
)
from rvm_render.cli.progress import ProgressBar
from rvm_render.engine import open_matter
from rvm_render.engine.weights import resolve_weights_path
from rvm_render.errors import RvmRenderError
from rvm_render.jobs.batch import BatchPolicy, check_distinct_outputs, probe_inputs, render_batch
from rvm_render.jobs.segments import DEFAULT_SEGMENT_FRAMES, PLAN_MODES, PREROLL_FRAMES
from rvm_render.pipeline import RenderRequest, RenderResult

log = logging.getLogger(__name__)

__all__ = ["add_parser", "run", "batch_policy_from"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    formats_help = "\n".join(f"  {fmt.value:<11} {text}" for fmt, text in FORMAT_HELP.items())
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
            f"Formats:\n{formats_help}"
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
    segments = parser.add_argument_group("segments and resume")
    segments.add_argument(
        "--segment-frames",
        type=parse_frame_count,
        default=None,
        metavar="N",
        help=f"most frames per checkpointed segment (default: {DEFAULT_SEGMENT_FRAMES}, used for clips longer "
        "than that; 0: one pass, no checkpoints)",
    )
    segments.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="checkpoint folder of the clip (default: OUTDIR/.rvm-work/<stem>; one INPUT only)",
    )
    segments.add_argument(
        "--mode",
        choices=PLAN_MODES,
        default=None,
        help="sequential: state handed from segment to segment, identical to one pass "
        "(default); parallel: each segment warms up on --preroll frames, independent",
    )
    segments.add_argument(
        "--preroll",
        type=parse_frame_count,
        default=PREROLL_FRAMES,
        metavar="N",
        help="parallel mode: frames matted before a segment to warm up the state (default: %(default)s)",
    )
    segments.add_argument(
        "--keep-work-dir",
        action="store_true",
        help="keep the work dir after the deliverables are assembled (default: removed)",
    )
    workers = parser.add_argument_group(
        "workers", "Spread segments over several devices or machines (segments default to parallel mode)."
    )
    workers.add_argument(
        "--workers",
        type=parse_worker_count,
        default=None,
        metavar="N",
        help="worker processes: one per CUDA device by default; on the CPU, N workers sharing the cores",
    )
    workers.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: worker processes on this machine (default); ray: one actor per GPU on a Ray cluster",
    )
    workers.add_argument(
        "--address", default=None, metavar="ADDR", help="Ray cluster address (default: start a local Ray instance)"
    )
    parser.set_defaults(run=run)


def batch_policy_from(args: argparse.Namespace) -> BatchPolicy:
    """The segment and worker flags as a :class:`~rvm_render.jobs.batch.BatchPolicy`."""
    return BatchPolicy(
        segment_frames=args.segment_frames,
        work_dir=args.work_dir,
        mode=args.mode,
        preroll_frames=args.preroll,
        keep_work_dir=args.keep_work_dir,
        workers=args.workers,
        executor=args.executor,
        address=args.address,
    )


def run(args: argparse.Namespace) -> int:
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
    if not args.quiet:
        print(f"{result.manifest_path}  ({result.frames} frames, {result.fps:.1f} fps)")


def _exit_code(failed: int, total: int) -> int:
    if failed:
        log.error("%d of %d inputs failed", failed, total)
        return 1
    return 0
