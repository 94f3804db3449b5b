"""Command-line options shared by the commands that render (``matte``, ``farm export``).

Parsers turn argv text into typed values or raise :class:`~rvm_render.errors.ConfigError`
naming the flag; :func:`add_render_options` declares the render flags once, and
:func:`render_settings_from` / :func:`engine_options_from` turn parsed flags into the
pipeline's and engine's settings.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path

from rvm_render.engine import EngineOptions, preferred_batch_frames
from rvm_render.errors import ConfigError
from rvm_render.media.writers import OutputFormat, parse_background
from rvm_render.pipeline import RenderSettings
from rvm_render.pipeline.render import DEFAULT_FORMATS

__all__ = [
    "FORMAT_HELP",
    "add_render_options",
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


def add_render_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Declare the flags that say what to render and with which engine."""
    parser.add_argument(
        "--formats",
        type=parse_formats,
        default=DEFAULT_FORMATS,
        help=f"comma-separated deliverables (default: {','.join(f.value for f in DEFAULT_FORMATS)})",
    )
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
        "--batch-frames",
        type=int,
        default=None,
        metavar="T",
        help="frames per engine call (default: 1 on CPU, 4 on CUDA)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a clip's earlier render whole: its manifest and every file it lists (default: refuse)",
    )


def render_settings_from(args: argparse.Namespace) -> RenderSettings:
    return RenderSettings(
        formats=args.formats,
        background=None if args.background is None else parse_background(args.background),
        overwrite=args.overwrite,
        batch_frames=preferred_batch_frames(args.device) if args.batch_frames is None else args.batch_frames,
    )


def engine_options_from(args: argparse.Namespace) -> EngineOptions:
    return EngineOptions(device=args.device, precision=args.precision, downsample_ratio=args.downsample_ratio)
