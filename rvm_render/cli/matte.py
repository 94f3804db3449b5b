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
from rvm_render.engine import Matter, open_matter
from rvm_render.engine.weights import resolve_weights_path
from rvm_render.errors import ConfigError, JobError, MediaError, OutputExistsError
from rvm_render.jobs.assemble import assemble_outputs, check_outputs_free
from rvm_render.jobs.checkpoint import WorkDir
from rvm_render.jobs.ray_executor import run_segments_on_ray
from rvm_render.jobs.runner import prepare_work_dir, render_segmented, work_dir_for
from rvm_render.jobs.scheduler import MatterSpec, local_worker_slots, run_segments_locally
from rvm_render.jobs.segments import DEFAULT_SEGMENT_FRAMES, PLAN_MODES, PREROLL_FRAMES, SegmentPolicy
from rvm_render.media.probe import probe
from rvm_render.pipeline import RenderRequest, RenderResult, RenderSettings, render_clip
from rvm_render.pipeline.progress import ProgressCallback
from rvm_render.pipeline.render import frame_range

log = logging.getLogger(__name__)

#: Errors that belong to one input: it is reported in one line and the run goes on.
_INPUT_ERRORS = (MediaError, OutputExistsError, ConfigError, JobError)

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    formats_help = "\n".join(f"  {fmt.value:<11} {text}" for fmt, text in FORMAT_HELP.items())
    parser = commands.add_parser(
        "matte",
        help="matte clips into ProRes 4444 / EXR / matte / composite deliverables",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Matte each INPUT (a video file, or an image sequence as name.%%04d.png or name.####.png)\n"
            "and write the selected deliverables plus OUTDIR/<stem>.rvm.json, which lists them.\n"
            "Outputs are written under temporary names and appear only when complete.\n\n"
            f"Formats:\n{formats_help}"
        ),
        epilog=(
            "Downsample ratio: the network sees the frame scaled by this ratio and the guided-filter\n"
            "refiner restores full resolution. 'auto' keeps the scaled long side within 256-512 px\n"
            "(0.25 for 4K, 0.375-0.5 for HD); raise it for small subjects, lower it for close-ups.\n\n"
            "Weights are looked for in: --weights, $RVM_RENDER_WEIGHTS, 'weights' in config.yaml,\n"
            "then the user cache dir. Accepted: official rvm_mobilenetv3.pth / rvm_resnet50.pth, or a\n"
            "TensorFlow.js model.json folder.\n\n"
            "Long clips: a clip longer than --segment-frames is rendered in segments, each\n"
            "checkpointed in the work dir (default OUTDIR/.rvm-work/<stem>); after a crash, Ctrl-C\n"
            "or kill, run the same command again to resume from the last finished segment. The\n"
            "result is identical to an uninterrupted run and, in sequential mode, to one pass.\n\n"
            "Examples:\n"
            "  rvm-render matte interview.mov -o mattes --formats prores4444,exr --downsample-ratio auto\n"
            "  rvm-render matte feature.mov -o mattes --segment-frames 2880 --work-dir /scratch/feature"
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", type=Path, help="clips to matte")
    parser.add_argument(
        "-o", "--output-dir", required=True, type=Path, metavar="OUTDIR", help="folder for the deliverables"
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


def _segmented(args: argparse.Namespace, request: RenderRequest) -> bool:
    """Whether to render in segments: asked for, longer than one segment, or resuming one."""
    if args.segment_frames == 0:
        return False
    if args.segment_frames is not None or args.work_dir is not None or args.mode is not None:
        return True
    info = probe(request.input_path)
    first, last = frame_range(request, info)
    return last - first + 1 > DEFAULT_SEGMENT_FRAMES or work_dir_for(request, info).exists()


def _render_one(
    args: argparse.Namespace,
    request: RenderRequest,
    settings: RenderSettings,
    matter: Matter,
    weights: Path,
    progress: ProgressCallback | None,
) -> RenderResult:
    if not _segmented(args, request):
        return render_clip(request, settings, matter, on_progress=progress)
    policy = _segment_policy(args)
    return render_segmented(
        request,
        settings,
        matter,
        policy,
        mode=args.mode or "sequential",
        work_dir=args.work_dir,
        on_progress=progress,
        weights_path=weights,
        keep_work_dir=args.keep_work_dir,
    )


def _segment_policy(args: argparse.Namespace) -> SegmentPolicy:
    return SegmentPolicy(max_frames=args.segment_frames or DEFAULT_SEGMENT_FRAMES, preroll_frames=args.preroll)


def _distributed(args: argparse.Namespace) -> bool:
    return args.workers is not None or args.executor == "ray"


def _render_distributed(
    args: argparse.Namespace,
    requests: list[RenderRequest],
    settings: RenderSettings,
    matter: Matter,
    weights: Path,
) -> tuple[list[RenderResult], int]:
    """Plan every input, render all their segments on the workers, then assemble each.

    Returns:
        The results and the number of inputs that failed before rendering.
    """
    policy = _segment_policy(args)
    planned: list[WorkDir] = []
    failed = 0
    for request in requests:
        try:
            work = prepare_work_dir(
                request,
                settings,
                matter,
                policy,
                mode=args.mode or "parallel",
                work_dir=args.work_dir,
                weights_path=weights,
            )
            check_outputs_free(work, overwrite=args.overwrite)
        except _INPUT_ERRORS as err:
            failed += 1
            print(f"error: {err}", file=sys.stderr)
            continue
        planned.append(work)
    if not planned:
        return [], failed
    spec = MatterSpec.resolved(weights, matter.options, variant=args.variant)
    progress = None if args.quiet else ProgressBar()
    if args.executor == "ray":
        run_segments_on_ray(planned, spec, address=args.address, workers=args.workers, on_progress=progress)
    else:
        slots = local_worker_slots(args.workers, args.device)
        run_segments_locally(planned, spec, slots=slots, on_progress=progress)
    results = [assemble_outputs(work, overwrite=args.overwrite, keep_work_dir=args.keep_work_dir) for work in planned]
    return results, failed


def run(args: argparse.Namespace) -> int:
    if _distributed(args) and args.segment_frames == 0:
        raise ConfigError("--segment-frames 0 renders in one pass on one device; drop --workers/--executor")
    if args.work_dir is not None and len(args.inputs) > 1:
        raise ConfigError("--work-dir: names the work dir of one clip; pass one INPUT with it")
    if args.segment_frames == 0 and (args.work_dir is not None or args.mode is not None):
        raise ConfigError("--segment-frames 0 renders in one pass; drop --work-dir and --mode, or segment")
    settings = render_settings_from(args)
    options = engine_options_from(args)
    weights = resolve_weights_path(args.weights)
    matter = open_matter(weights, options, variant=args.variant)
    first, last = args.frames if args.frames is not None else (None, None)
    requests = [RenderRequest(path, args.output_dir, first_frame=first, last_frame=last) for path in args.inputs]
    if _distributed(args):
        results, failed = _render_distributed(args, requests, settings, matter, weights)
        for result in results:
            _report(args, result)
        return _exit_code(failed, len(requests))
    progress = None if args.quiet else ProgressBar()
    failed = 0
    for request in requests:
        try:
            result = _render_one(args, request, settings, matter, weights, progress)
        except _INPUT_ERRORS as err:
            failed += 1
            print(f"error: {err}", file=sys.stderr)
            continue
        _report(args, result)
    return _exit_code(failed, len(requests))


def _report(args: argparse.Namespace, result: RenderResult) -> None:
    if not args.quiet:
        print(f"{result.manifest_path}  ({result.frames} frames, {result.fps:.1f} fps)")


def _exit_code(failed: int, total: int) -> int:
    if failed:
        log.error("%d of %d inputs failed", failed, total)
        return 1
    return 0
