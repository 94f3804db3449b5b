"""Command-line options shared by the commands that render (``matte``, ``timeline``, ``farm export``).

Parsers turn argv text into typed values or raise :class:`~rvm_render.errors.ConfigError`
naming the flag; :func:`add_render_options` declares the render flags once, and
:func:`render_settings_from` / :func:`engine_options_from` turn parsed flags into the
pipeline's and engine's settings. Declaring the flags loads nothing heavy (``--help`` starts at
once); the engine, pipeline and batch modules are imported when the flags are turned into settings.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path
from typing import TYPE_CHECKING

from rvm_render.errors import ConfigError
from rvm_render.jobs.segments import DEFAULT_SEGMENT_FRAMES, PLAN_MODES, PREROLL_FRAMES
from rvm_render.media.writers.formats import OutputFormat
from rvm_render.pipeline.defaults import DEFAULT_FORMATS, DEFAULT_WARMUP_FRAMES

if TYPE_CHECKING:
    from rvm_render.engine import EngineOptions
    from rvm_render.jobs.batch import BatchPolicy
    from rvm_render.pipeline import RenderSettings

__all__ = [
    "FORMAT_HELP",
    "FORMATS_TABLE",
    "add_batch_options",
    "add_render_options",
    "batch_policy_from",
    "engine_options_from",
    "parse_downsample_ratio",
    "parse_formats",
    "parse_frame_count",
    "parse_frame_range",
    "parse_worker_count",
    "render_settings_from",
]

FORMAT_HELP = {
    OutputFormat.PRORES4444: "ProRes 4444 .mov, straight foreground RGB + matte alpha, audio copied",
    OutputFormat.EXR: "OpenEXR sequence, half float, ZIP, channels R G B A",
    OutputFormat.ALPHA: "grey matte video for a track matte, audio copied",
    OutputFormat.COMP: "H.264 preview of the subject over --background, audio copied",
    OutputFormat.PNG: "RGBA PNG sequence",
}
#: The deliverables, one a line, for a command's description.
FORMATS_TABLE = "\n".join(f"  {fmt.value:<11} {text}" for fmt, text in FORMAT_HELP.items())


def parse_formats(text: str) -> tuple[OutputFormat, ...]:
    """``'prores4444,exr'`` -> the formats, in order, without repeats."""
    known = [fmt.value for fmt in OutputFormat]
    formats: list[OutputFormat] = []
    for name in (part.strip().lower() for part in text.split(",")):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"--formats: unknown '{name}'{hint}; choose from {', '.join(known)}")
        if OutputFormat(name) not in formats:
            formats.append(OutputFormat(name))
    return tuple(formats)


def parse_frame_range(text: str) -> tuple[int, int]:
    """``'10-99'`` -> ``(10, 99)``: inclusive frame numbers (movies: 0-based; sequences: file numbers)."""
    first, sep, last = text.partition("-")
    if not sep or not first.strip().isdigit() or not last.strip().isdigit() or int(first) > int(last):
        raise ConfigError(f"--frames: '{text}' is not FIRST-LAST (inclusive frame numbers, e.g. 0-99 or 1001-1100)")
    return int(first), int(last)


def parse_downsample_ratio(text: str) -> float | str:
    if text == "auto":
        return "auto"
    try:
        ratio = float(text)
    except ValueError:
        ratio = 0.0
    if not 0.0 < ratio <= 1.0:
        raise ConfigError(f"--downsample-ratio: '{text}' must be 'auto' or a number in (0, 1], e.g. 0.25")
    return ratio


def parse_frame_count(text: str) -> int:
    """A frame count >= 0 (``--segment-frames``, ``--preroll``)."""
    if not text.strip().isdigit():
        raise ConfigError(f"'{text}' is not a frame count (a whole number >= 0)")
    return int(text)


def parse_worker_count(text: str) -> int:
    """A worker count >= 1 (``--workers``)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigError(f"--workers: '{text}' is not a worker count (a whole number >= 1)")
    return int(text)


def add_render_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, frames: bool = True) -> None:
    """Declare the flags that say what to render and with which engine.

    Args:
        frames: offer ``--frames`` (a range of one clip).
    """
    parser.add_argument(
        "--formats",
        type=parse_formats,
        default=DEFAULT_FORMATS,
        help=f"comma-separated deliverables (default: {','.join(f.value for f in DEFAULT_FORMATS)})",
    )
    if frames:
        parser.add_argument(
            "--frames",
            type=parse_frame_range,
            default=None,
            metavar="FIRST-LAST",
            help="render only these frames, inclusive: 0-based for movies, the file numbers for image "
            "sequences (e.g. 1001-1100)",
        )
    parser.add_argument(
        "--downsample-ratio",
        type=parse_downsample_ratio,
        default="auto",
        metavar="auto|R",
        help="network input scale (default: auto)",
    )
    parser.add_argument(
        "--warmup",
        type=parse_frame_count,
        default=DEFAULT_WARMUP_FRAMES,
        metavar="N",
        help="warm start: before each shot's first frame, run the network over the shot's next N frames in "
        "reverse and discard them, so the first frames are matted from a settled state (default: %(default)s; "
        "see bench/warmup.py)",
    )
    parser.add_argument(
        "--background",
        default=None,
        metavar="COLOR|IMAGE|VIDEO",
        help="backdrop for 'comp': a colour (green, #00b140), an image or a video (default: green)",
    )
    parser.add_argument(
        "--variant", choices=("mobilenetv3", "resnet50"), default=None, help="require this model variant"
    )
    parser.add_argument("--weights", type=Path, default=None, help="weights file or tfjs model folder")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N (default: auto)")
    parser.add_argument(
        "--precision", choices=("auto", "fp32", "fp16"), default="auto", help="auto: fp16 on CUDA, fp32 on CPU"
    )
    parser.add_argument(
        "--network",
        choices=("auto", "eager", "cuda_graph"),
        default="auto",
        help="how the network is called: auto (CUDA graphs on CUDA, eager elsewhere), eager, cuda_graph (CUDA)",
    )
    parser.add_argument(
        "--batch-frames",
        type=int,
        default=None,
        metavar="T",
        help="frames per engine call (default: 1 on CPU, 4 on CUDA)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="render again and replace a clip's earlier render whole: its manifest and every file it lists "
        "(default: keep an earlier render that is up to date, refuse one that is not)",
    )


def add_batch_options(parser: argparse.ArgumentParser, *, work_dir: bool = True) -> None:
    """Declare the segment, resume and worker flags (:class:`~rvm_render.jobs.batch.BatchPolicy`).

    Args:
        work_dir: offer ``--work-dir`` (the work dir of one clip).
    """
    segments = parser.add_argument_group("segments and resume")
    segments.add_argument(
        "--segment-frames",
        type=parse_frame_count,
        default=None,
        metavar="N",
        help=f"most frames per checkpointed segment (default: {DEFAULT_SEGMENT_FRAMES}, used for clips longer "
        "than that; 0: one pass, no checkpoints)",
    )
    if work_dir:
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
        help="frames matted to warm up the state before a parallel segment, and before the new frames of a "
        "matte a timeline conform extends past its end (default: %(default)s)",
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


def batch_policy_from(args: argparse.Namespace) -> BatchPolicy:
    """The segment and worker flags as a :class:`~rvm_render.jobs.batch.BatchPolicy`."""
    from rvm_render.jobs.batch import BatchPolicy

    return BatchPolicy(
        segment_frames=args.segment_frames,
        work_dir=getattr(args, "work_dir", None),
        mode=args.mode,
        preroll_frames=args.preroll,
        keep_work_dir=args.keep_work_dir,
        workers=args.workers,
        executor=args.executor,
        address=args.address,
    )


def render_settings_from(args: argparse.Namespace) -> RenderSettings:
    from rvm_render.engine import preferred_batch_frames
    from rvm_render.media.writers import parse_background
    from rvm_render.pipeline import RenderSettings

    return RenderSettings(
        formats=args.formats,
        background=None if args.background is None else parse_background(args.background),
        overwrite=args.overwrite,
        batch_frames=preferred_batch_frames(args.device) if args.batch_frames is None else args.batch_frames,
        warmup_frames=args.warmup,
    )


def engine_options_from(args: argparse.Namespace) -> EngineOptions:
    from rvm_render.engine import EngineOptions

    return EngineOptions(
        device=args.device, precision=args.precision, downsample_ratio=args.downsample_ratio, network=args.network
    )
