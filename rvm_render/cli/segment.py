"""``rvm-render segment``: render one segment of a planned work dir (what each farm task runs).

The work dir (made by ``rvm-render matte`` or ``rvm-render farm``) holds the input, the
settings, the weights' path and digest, and the plan; this command only adds the device.
A segment that starts from the state of the one before it refuses to run until that one is
done. A finished segment is skipped, so a retried task is harmless.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rvm_render.cli.options import parse_frame_count
from rvm_render.cli.progress import ProgressBar
from rvm_render.errors import JobError

log = logging.getLogger(__name__)

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "segment",
        help="render one segment of a work dir (farm task)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Render segment K of WORKDIR into WORKDIR/segments/ and checkpoint it. In a sequential\n"
            "plan segment K starts from the state segment K-1 saved, so K-1 must be done first.\n"
            "When every segment is done, 'rvm-render assemble WORKDIR' writes the deliverables."
        ),
        epilog="Example:\n  rvm-render segment mattes/.rvm-work/interview --index 3 --device cuda:1",
    )
    parser.add_argument("work_dir", type=Path, metavar="WORKDIR", help="the clip's work dir (holds plan.json)")
    parser.add_argument(
        "--index", type=parse_frame_count, required=True, metavar="K", help="segment to render (0-based)"
    )
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N (default: the plan's)")
    parser.add_argument("--precision", choices=("auto", "fp32", "fp16"), default=None, help="default: the plan's")
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="weights as seen from this machine (default: the plan's path, then the usual lookup)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rvm_render.engine import EngineOptions, open_matter  # loaded when it runs: --help starts at once (cli.main)
    from rvm_render.jobs.checkpoint import WorkDir
    from rvm_render.jobs.runner import render_segment

    work = WorkDir.load(args.work_dir)
    spec = work.plan.spec
    if spec is None:
        raise JobError(
            f"work dir '{work.path}' has no render settings in plan.json; plan it with rvm-render matte or farm"
        )
    segment = work.plan.segment(args.index)
    if work.completed(args.index) is not None:
        log.warning("segment %d of '%s' is already done; nothing to do", args.index, work.path)
        return 0
    work.state_before(args.index)  # refuses before loading weights when the previous segment is not done
    options = EngineOptions(
        device=args.device or spec.device,
        precision=args.precision or spec.precision,  # type: ignore[arg-type]
        downsample_ratio=spec.downsample_ratio,
    )
    weights = args.weights or spec.weights_path
    matter = open_matter(weights, options, variant=spec.variant)
    render_segment(work, args.index, matter, on_progress=None if args.quiet else ProgressBar())
    if not args.quiet:
        print(f"segment {args.index} of {work.path} done (frames {segment.first_frame}-{segment.last_frame})")
    return 0
