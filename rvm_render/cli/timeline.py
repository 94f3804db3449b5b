"""``rvm-render timeline``: conform an editor's timeline and hand it back with matte tracks.

Thin shell over :func:`rvm_render.otio.conform_timeline`: parses the flags, prints the plan
(``--dry-run``) or a progress bar and a summary, and maps failures to exit codes.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from rvm_render.cli.options import (
    FORMATS_TABLE,
    add_batch_options,
    add_render_options,
    batch_policy_from,
    engine_options_from,
    parse_frame_count,
    render_settings_from,
)
from rvm_render.cli.progress import ProgressBar
from rvm_render.errors import ConfigError, RvmRenderError
from rvm_render.otio.defaults import DEFAULT_HANDLES

if TYPE_CHECKING:
    from rvm_render.otio import ConformPlan
    from rvm_render.otio.requests import MediaRange

log = logging.getLogger(__name__)

__all__ = ["add_parser", "run", "plan_lines"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "timeline",
        help="matte the media an edit uses and return the timeline with matte tracks (OpenTimelineIO)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Conform TIMELINE (.otio, .otioz, .otiod; Premiere/FCP XML and FCPXML with\n"
            "pip install 'rvm-render[editorial]'): matte exactly the frames its video clips show, plus\n"
            "--handles on each side, once per media file range, and write OUTDIR/<timeline>.rvm.otio:\n"
            "the same timeline with a '<track> RVM Matte' video track above the picture for each video\n"
            "track, its matte clips frame-exactly on top of their source clips. Re-import it in\n"
            "Resolve, Nuke Studio/Hiero, Premiere or any OpenTimelineIO host. Mattes are named by\n"
            "media and range (interview_000118-000402_matte.mov), each with its .rvm.json.\n\n"
            f"Formats:\n{FORMATS_TABLE}"
        ),
        epilog=(
            "Media not at the path the editor's machine recorded is found by file name under\n"
            "--relink DIR. Clips that cannot be matted (generators, missing media) are listed and\n"
            "left out; --strict refuses the conform instead. Running the same command again after\n"
            "an interruption, or on an edit cut further (its own .rvm.otio included), keeps the\n"
            "mattes still right and whole, renders only what changed and updates the matte tracks.\n\n"
            "Examples:\n"
            "  rvm-render timeline edit.otio -o /show/mattes --dry-run\n"
            "  rvm-render timeline edit.otio -o /show/mattes --relink /Volumes/Media --handles 24\n"
            "  rvm-render timeline cut.xml -o mattes --formats prores4444,exr --relative-paths"
        ),
    )
    parser.add_argument("timeline", type=Path, metavar="TIMELINE", help="the edit, as exported by the editor")
    parser.add_argument(
        "-o", "--output-dir", required=True, type=Path, metavar="OUTDIR", help="folder for the mattes and .rvm.otio"
    )
    conform = parser.add_argument_group("conform")
    conform.add_argument(
        "--handles",
        type=parse_frame_count,
        default=DEFAULT_HANDLES,
        metavar="N",
        help="frames matted beyond each clip on each side, for trims after the conform (default: %(default)s)",
    )
    conform.add_argument(
        "--relink",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="find media missing at its recorded path by file name under DIR (repeatable)",
    )
    conform.add_argument("--dry-run", action="store_true", help="print the plan (media, ranges, skipped clips)")
    conform.add_argument("--strict", action="store_true", help="fail when any video clip cannot be matted")
    conform.add_argument(
        "--relative-paths", action="store_true", help="matte paths in the .rvm.otio relative to it (default: absolute)"
    )
    add_render_options(parser, frames=False)
    add_batch_options(parser, work_dir=False)
    parser.set_defaults(run=run)


#: Clips a ``--dry-run`` line names for one range; the rest are counted (an edit may use a file 2000 times).
LISTED_CLIPS = 5


def _range_line(media_range: MediaRange) -> str:
    uses = media_range.uses
    clips = ", ".join(f"{use.place.label()} '{use.name}'" for use in uses[:LISTED_CLIPS])
    if len(uses) > LISTED_CLIPS:
        clips += f", ... {len(uses) - LISTED_CLIPS} more clips"
    return (
        f"  {media_range.media}  frames {media_range.first_frame}-{media_range.last_frame} "
        f"({media_range.frames})  -> {media_range.stem}  [{clips}]"
    )


def plan_lines(plan: ConformPlan) -> list[str]:
    """The plan as ``--dry-run`` prints it: ranges, then skipped clips."""
    lines = [
        f"{len(plan.uses)} video clips to matte in {len(plan.ranges)} media ranges, {plan.frames} frames "
        f"(handles {plan.handles}); {len(plan.skipped)} video clips skipped"
        + (f"; {plan.audio_clips} audio clips not matted" if plan.audio_clips else "")
    ]
    lines += [_range_line(media_range) for media_range in plan.ranges]
    if plan.skipped:
        lines.append("skipped:")
        lines += [f"  {skipped.line()}" for skipped in plan.skipped]
    if plan.earlier_mattes:
        lines.append(f"mattes of an earlier run (not matted again): {len(plan.earlier_mattes)} clips")
    return lines


def run(args: argparse.Namespace) -> int:
    from rvm_render.engine import open_matter  # loaded when it runs: --help starts at once (cli.main)
    from rvm_render.engine.weights import resolve_weights_path
    from rvm_render.media.commit import check_writable_folder
    from rvm_render.otio import ConformOptions, conform_timeline, plan_timeline
    from rvm_render.otio.conform import check_conformable, conformed_name

    options = ConformOptions(
        handles=args.handles,
        relink_dirs=tuple(args.relink),
        strict=args.strict,
        relative_paths=args.relative_paths,
    )
    for folder in options.relink_dirs:
        if not folder.is_dir():
            raise ConfigError(f"--relink: '{folder}' is not a folder; pass the folder that holds the media")
    if args.dry_run:  # renders and writes nothing (an .otioz bundle's media is unpacked to a temp folder)
        with tempfile.TemporaryDirectory(prefix="rvm-render-dry-run-") as unpacked:
            _, plan = plan_timeline(args.timeline, options, bundle_media_dir=Path(unpacked))
        print("\n".join(plan_lines(plan)))
        check_conformable(args.timeline, plan, options)  # --strict fails the dry run as it fails the real one
        return 0
    check_writable_folder(args.output_dir)  # once, before the model loads
    policy = batch_policy_from(args)
    settings = render_settings_from(args)
    weights = resolve_weights_path(args.weights)
    matter = open_matter(weights, engine_options_from(args), variant=args.variant)

    def report_failure(media_range: MediaRange, err: RvmRenderError) -> None:
        print(f"error: {media_range.stem}: {err}", file=sys.stderr)

    result = conform_timeline(
        args.timeline,
        args.output_dir,
        settings,
        matter,
        policy,
        options,
        weights_path=weights,
        on_progress=None if args.quiet else ProgressBar(),
        on_failure=report_failure,
    )
    plan = result.plan
    for skipped in plan.skipped:
        print(f"skipped: {skipped.line()}", file=sys.stderr)
    if result.timeline_path is None:
        written = conformed_name(args.timeline)
        print(f"error: {len(result.failed)} of {len(plan.ranges)} media ranges failed; {written} was not written "
              "(an earlier one is left as it was); fix them and run again", file=sys.stderr)  # fmt: skip
        return 1
    if not args.quiet:
        matted = len(result.rendered) + len(result.reused)
        earlier = f", {len(plan.earlier_mattes)} mattes of an earlier run" if plan.earlier_mattes else ""
        print(
            f"{result.timeline_path}  ({matted} of {len(plan.ranges)} media ranges matted"
            f"{f', {len(result.reused)} kept from an earlier run' if result.reused else ''}"
            f"{f', {result.extended} extended' if result.extended else ''}; {result.frames_rendered} frames rendered; "
            f"{len(plan.uses)} clips, {len(plan.skipped)} skipped{earlier})"
        )
        if result.same_format_path is not None:
            print(result.same_format_path)
    return 0
