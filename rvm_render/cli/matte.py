"""``rvm-render matte``: matte clips into deliverables in one pass each."""

from __future__ import annotations

import argparse
import difflib
import logging
import sys
from pathlib import Path

from rvm_render.engine import EngineOptions, open_matter
from rvm_render.errors import ConfigError, MediaError, OutputExistsError
from rvm_render.media.writers import OutputFormat, parse_background
from rvm_render.pipeline import RenderRequest, RenderSettings, render_clip
from rvm_render.pipeline.render import DEFAULT_FORMATS
from rvm_render.cli.progress import ProgressBar

log = logging.getLogger(__name__)

__all__ = ["add_parser", "run", "parse_formats", "parse_frame_range", "parse_downsample_ratio"]

_FORMAT_HELP = {
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
    """``'10-99'`` -> ``(10, 99)``, inclusive 0-based frame indices."""
    first, sep, last = text.partition("-")
    if not sep or not first.strip().isdigit() or not last.strip().isdigit() or int(first) > int(last):
        raise ConfigError(f"--frames: '{text}' is not FIRST-LAST (0-based, inclusive, e.g. 0-99)")
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


def add_parser(commands: argparse._SubParsersAction) -> None:
    formats_help = "\n".join(f"  {fmt.value:<11} {text}" for fmt, text in _FORMAT_HELP.items())
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
            "Example:\n"
            "  rvm-render matte interview.mov -o mattes --formats prores4444,exr --downsample-ratio auto"
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", type=Path, help="clips to matte")
    parser.add_argument("-o", "--output-dir", required=True, type=Path, metavar="OUTDIR", help="folder for the deliverables")
    parser.add_argument(
        "--formats",
        type=parse_formats,
        default=DEFAULT_FORMATS,
        help=f"comma-separated deliverables (default: {','.join(f.value for f in DEFAULT_FORMATS)})",
    )
    parser.add_argument("--downsample-ratio", type=parse_downsample_ratio, default="auto", metavar="auto|R", help="network input scale (default: auto)")
    parser.add_argument(
        "--background",
        default=None,
        metavar="COLOR|IMAGE|VIDEO",
        help="backdrop for 'comp': a colour (green, #00b140), an image or a video (default: green)",
    )
    parser.add_argument("--variant", choices=("mobilenetv3", "resnet50"), default=None, help="require this model variant")
    parser.add_argument("--weights", type=Path, default=None, help="weights file or tfjs model folder")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N (default: auto)")
    parser.add_argument("--precision", choices=("auto", "fp32", "fp16"), default="auto", help="auto: fp16 on CUDA, fp32 on CPU")
    parser.add_argument("--frames", type=parse_frame_range, default=None, metavar="FIRST-LAST", help="render only these frames (0-based, inclusive)")
    parser.add_argument("--batch-frames", type=int, default=RenderSettings.batch_frames, metavar="T", help="frames per engine call (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: refuse)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = RenderSettings(
        formats=args.formats,
        background=None if args.background is None else parse_background(args.background),
        overwrite=args.overwrite,
        batch_frames=args.batch_frames,
    )
    options = EngineOptions(device=args.device, precision=args.precision, downsample_ratio=args.downsample_ratio)
    matter = open_matter(args.weights, options, variant=args.variant)
    progress = None if args.quiet else ProgressBar()
    first, last = args.frames if args.frames is not None else (None, None)
    failed = 0
    for input_path in args.inputs:
        request = RenderRequest(input_path, args.output_dir, first_frame=first, last_frame=last)
        try:
            result = render_clip(request, settings, matter, on_progress=progress)
        except (MediaError, OutputExistsError, ConfigError) as err:
            failed += 1
            print(f"error: {err}", file=sys.stderr)
            continue
        if not args.quiet:
            print(f"{result.manifest_path}  ({result.frames} frames, {result.fps:.1f} fps)")
    if failed:
        log.error("%d of %d inputs failed", failed, len(args.inputs))
        return 1
    return 0
