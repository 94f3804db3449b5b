"""``rvm-render assemble``: the deliverables of a work dir whose segments are all done.

Joins the segments' movie parts (packets remuxed, audio and timecode from the source), puts
the frame sequences in place, writes ``<stem>.rvm.json`` and removes the work dir.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "assemble",
        help="write the deliverables of a work dir whose segments are done (farm's last task)",
        description="Assemble WORKDIR's finished segments into the deliverables and manifest in its output folder.",
        epilog="Example:\n  rvm-render assemble mattes/.rvm-work/interview",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("work_dir", type=Path, metavar="WORKDIR", help="the clip's work dir (holds plan.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: refuse)")
    parser.add_argument("--keep-work-dir", action="store_true", help="keep the work dir afterwards (default: removed)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rvm_render.jobs.assemble import assemble_outputs  # loaded when it runs: --help starts at once (cli.main)

    result = assemble_outputs(args.work_dir, overwrite=args.overwrite, keep_work_dir=args.keep_work_dir)
    if not args.quiet:
        print(f"{result.manifest_path}  ({result.frames} frames)")
    return 0
