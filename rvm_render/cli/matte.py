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
import os
import sys
from dataclasses import dataclass
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
from rvm_render.errors import ConfigError, JobError, MediaError, OutputError, OutputExistsError
from rvm_render.jobs.assemble import assemble_outputs, check_outputs_free
from rvm_render.jobs.checkpoint import WorkDir
from rvm_render.jobs.ray_executor import run_segments_on_ray
from rvm_render.jobs.runner import prepare_work_dir, render_segmented, work_dir_for
from rvm_render.jobs.scheduler import MatterSpec, local_worker_slots, run_segments_locally
from rvm_render.jobs.segments import DEFAULT_SEGMENT_FRAMES, PLAN_MODES, PREROLL_FRAMES, SegmentPolicy
from rvm_render.media.commit import output_error
from rvm_render.media.probe import MediaInfo, probe
from rvm_render.pipeline import RenderRequest, RenderResult, RenderSettings, render_clip
from rvm_render.pipeline.progress import ProgressCallback
from rvm_render.pipeline.render import clip_stem, frame_range

log = logging.getLogger(__name__)

#: Errors that belong to one input: it is reported in one line and the run goes on.
_INPUT_ERRORS = (MediaError, OutputExistsError, OutputError, ConfigError, JobError)

__all__ = ["add_parser", "run"]


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


def _segmented(args: argparse.Namespace, request: RenderRequest, info: MediaInfo) -> bool:
    """Whether to render in segments: asked for, longer than one segment, or resuming one."""
    if args.segment_frames == 0:
        return False
    if args.segment_frames is not None or args.work_dir is not None or args.mode is not None:
        return True
    first, last = frame_range(request, info)
    return last - first + 1 > DEFAULT_SEGMENT_FRAMES or work_dir_for(request, info).exists()


def _render_one(
    args: argparse.Namespace,
    clip: _Input,
    settings: RenderSettings,
    matter: Matter,
    weights: Path,
    progress: ProgressCallback | None,
) -> RenderResult:
    if not _segmented(args, clip.request, clip.info):
        return render_clip(clip.request, settings, matter, on_progress=progress, info=clip.info)
    policy = _segment_policy(args)
    return render_segmented(
        clip.request,
        settings,
        matter,
        policy,
        mode=args.mode or "sequential",
        work_dir=args.work_dir,
        on_progress=progress,
        weights_path=weights,
        keep_work_dir=args.keep_work_dir,
        info=clip.info,
    )


def _segment_policy(args: argparse.Namespace) -> SegmentPolicy:
    return SegmentPolicy(max_frames=args.segment_frames or DEFAULT_SEGMENT_FRAMES, preroll_frames=args.preroll)


def _distributed(args: argparse.Namespace) -> bool:
    return args.workers is not None or args.executor == "ray"


def _render_distributed(
    args: argparse.Namespace,
    clips: list[_Input],
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
    for clip in clips:
        try:
            work = prepare_work_dir(
                clip.request,
                settings,
                matter,
                policy,
                mode=args.mode or "parallel",
                work_dir=args.work_dir,
                weights_path=weights,
                info=clip.info,
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


@dataclass(frozen=True, slots=True)
class _Input:
    """One INPUT of the run, probed."""

    request: RenderRequest
    info: MediaInfo


def _probed(requests: list[RenderRequest]) -> tuple[list[_Input], int]:
    """Probe every input once, up front; an unreadable one is reported in one line and left out.

    Returns:
        The readable inputs and the number that failed.
    """
    clips: list[_Input] = []
    failed = 0
    for request in requests:
        try:
            clips.append(_Input(request, probe(request.input_path)))
        except MediaError as err:
            failed += 1
            print(f"error: {err}", file=sys.stderr)
    return clips, failed


def _check_distinct_names(clips: list[_Input]) -> None:
    """Refuse a run in which two inputs would write the same deliverables (same stem, same folder).

    Stems are compared without case: they clash on macOS and Windows file systems and shares.

    Raises:
        ConfigError: naming both inputs and how to resolve it.
    """
    seen: dict[tuple[str, str], Path] = {}
    for clip in clips:
        stem = clip_stem(clip.info)
        output_dir = clip.request.output_dir
        key = (os.path.abspath(output_dir), stem.casefold())
        other = seen.get(key)
        if other is not None:
            raise ConfigError(
                f"inputs '{other}' and '{clip.request.input_path}' would both write '{output_dir / stem}_*' and "
                f"'{stem}.rvm.json'; matte them into different output folders (-o) in separate runs, or rename one"
            )
        seen[key] = clip.request.input_path


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
    first, last = args.frames if args.frames is not None else (None, None)
    requests = [
        RenderRequest(path, args.output_dir or path.parent, first_frame=first, last_frame=last) for path in args.inputs
    ]
    clips, failed = _probed(requests)
    _check_distinct_names(clips)
    if not clips:
        return _exit_code(failed, len(requests))
    matter = open_matter(weights, options, variant=args.variant)
    if _distributed(args):
        results, unplanned = _render_distributed(args, clips, settings, matter, weights)
        for result in results:
            _report(args, result)
        return _exit_code(failed + unplanned, len(requests))
    progress = None if args.quiet else ProgressBar()
    for clip in clips:
        try:
            result = _render_one(args, clip, settings, matter, weights, progress)
        except _INPUT_ERRORS as err:
            failed += 1
            print(f"error: {err}", file=sys.stderr)
            continue
        except OSError as err:  # an output failure no layer below named: still one line, and the run goes on
            failed += 1
            print(f"error: {output_error(err.filename or clip.request.output_dir, err)}", file=sys.stderr)
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
