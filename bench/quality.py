"""Composite benchmark: the engine's matte quality against true alpha, at the ratios users pick.

    python bench/quality.py [--shared DIR] [--clips N] [--frames N] [--ratios auto,0.5,0.25]
                            [--warmup N] [--work-dir DIR] [--per-clip] [--json PATH] [--save]

Builds short clips with known alpha, deterministically, then mattes them with the engine as
users run it and scores the mattes with the RVM paper's metrics (:mod:`rvm_render.quality`):

1. **Foregrounds**: the 12 Composition-1k crops of ``$RVM_RENDER_SHARED/testdata/gt/``
   (``image/NAME.png``, 320x320, and its true ``alpha/NAME.png``). Each clip's foreground moves:
   per frame it is scaled by 1.03..1.27 and panned on a circle (bilinear; image and alpha warped
   identically), always covering the frame, so no artificial crop edge enters it.
2. **Backgrounds**: frames of the shared clips (``testdata/clips``), from a window of each
   clip that holds no people (:data:`BACKGROUNDS`; the clips show people elsewhere), panned
   across that region and scaled to 320x320, so the background moves as well (plus the clip's
   own motion, hand-held in ``bedroom.mp4``).
3. **Composite**: ``comp = alpha * image + (1 - alpha) * background``. An approximation: ``image``
   is itself a composite over its original background, not the clean foreground (which the
   crops lack), so semi-transparent hair carries a trace of the old background.
4. Written losslessly to ``WORK/clips/NAME.mkv`` (FFV1, RGB) with the warped alpha beside it as
   ``WORK/gt/NAME.mkv`` (FFV1, 16-bit grey), both readable by ``rvm-render eval``.
5. **Matte**: :func:`render_mattes` runs :func:`rvm_render.pipeline.render_clip` (the pipeline
   ``rvm-render matte`` uses, default weights and engine) per ratio into ``WORK/renders/RATIO/``
   as EXR, and the mattes are scored as ``rvm-render eval WORK/renders/RATIO WORK/gt`` would.

Prints per ratio the mean over clips of MAD, MSE, Grad, Conn and dtSSD, over the whole clip and
over its first 16 frames (where the recurrent state is still converging), and the render speed;
once over all clips and once over the clips whose crop leaves background in view
(:data:`FILL_LIMIT`), as the five that are all dress or hair are mostly not recognised at all.
``auto`` is 1 at this size (frames of up to 512 px run at full size). The work dir is a temporary
folder removed at the end, unless ``--work-dir`` names one (kept). ``--save`` also writes the
printed report to ``bench/results/quality.txt``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import onnxruntime
import torch

from rvm_render.engine import EngineOptions, open_matter
from rvm_render.media import open_reader
from rvm_render.media.probe import probe
from rvm_render.media.writers import OutputFormat
from rvm_render.pipeline import RenderRequest, RenderSettings, render_clip
from rvm_render.pipeline.render import DEFAULT_WARMUP_FRAMES
from rvm_render.quality import METRIC_NAMES, SCALING, ClipScores, matte_pairs, mean_scores, pair_scores

SIZE = 320
FRAMES = 48
RATIOS = ("auto", "0.5", "0.25")
RATE = Fraction(24)
#: (clip, people-free region x0, y0, x1, y1 in its pixels): checked by eye on frames 0, 60, 120, 180.
BACKGROUNDS = (
    ("05_default_juggle.mp4", (0, 0, 540, 720)),  # left of the juggler: trees, lawn, building
    ("01_dog.mp4", (700, 0, 1280, 340)),  # upper right: passage, plants (woman left, dog lower)
    ("bedroom.mp4", (740, 0, 960, 540)),  # right: mirror, chest of drawers (children left)
)
#: Crops whose subject fills the frame (mean true alpha >= FILL_LIMIT) are also left out of a second
#: table: the five such crops (mean alpha 0.79-1.0: a wedding dress, close-ups of hair) show no person the
#: network recognises, so it mattes them as background (MAD 500-975) and they swamp the mean; the other
#: seven (0.24-0.65) show a head against background, the footage RVM is made for.
FILL_LIMIT = 0.7
#: Scale of the foreground over the clip: SCALE_MID +- SCALE_SWING (always > 1: it covers the frame).
SCALE_MID, SCALE_SWING = 1.15, 0.12
RESULTS = Path(__file__).resolve().parent / "results" / "quality.txt"


@dataclass(frozen=True, slots=True)
class BenchClip:
    name: str
    clip: Path
    gt: Path
    fill: float  # mean true alpha of the crop


# --- building the clips ---------------------------------------------------------------------


def _resampled(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` at the grid ``ys x xs`` (an axis-aligned warp: separable).

    Shape:
        image: [H, W, C] float32; xs: [w]; ys: [h] -> [h, w, C]
    """
    height, width = image.shape[:2]
    xs = np.clip(xs, 0, width - 1)
    ys = np.clip(ys, 0, height - 1)
    x0 = np.minimum(np.floor(xs).astype(int), width - 2)
    y0 = np.minimum(np.floor(ys).astype(int), height - 2)
    fx = (xs - x0).astype(np.float32)[None, :, None]
    fy = (ys - y0).astype(np.float32)[:, None, None]
    top = image[y0][:, x0] * (1 - fx) + image[y0][:, x0 + 1] * fx
    bottom = image[y0 + 1][:, x0] * (1 - fx) + image[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _foreground_warp(k: int, clips: int, t: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates (xs, ys) of output frame ``t`` of clip ``k``: scaled and panned, covering the frame."""
    phase = 2 * math.pi * k / clips
    turn = 2 * math.pi * t / frames
    scale = SCALE_MID + SCALE_SWING * math.sin(turn + phase)
    centre = (SIZE - 1) / 2
    reach = 0.9 * centre * (scale - 1)  # within (scale - 1) * centre the scaled crop still covers the frame
    dx, dy = reach * math.cos(turn + 2 * phase), reach * math.sin(turn + 2 * phase)
    grid = np.arange(SIZE, dtype=np.float64)
    return (grid - centre - dx) / scale + centre, (grid - centre - dy) / scale + centre


def _background_frames(shared: Path, k: int, frames: int) -> list[np.ndarray]:
    """``frames`` background frames for clip ``k``: a square window panned across a people-free region."""
    name, (x0, y0, x1, y1) = BACKGROUNDS[k % len(BACKGROUNDS)]
    info = probe(shared / "testdata" / "clips" / name)
    if frames >= info.frames:
        raise SystemExit(f"--frames {frames}: the background clip {name} has {info.frames}; pass fewer")
    start = (k * 23) % (info.frames - frames)
    side = min(x1 - x0, y1 - y0)
    step = side / SIZE
    grid = (np.arange(SIZE) + 0.5) * step - 0.5
    out = []
    with open_reader(info, start, start + frames - 1) as reader:
        for t, decoded in enumerate(reader):
            travel = t / max(frames - 1, 1)
            if (k // len(BACKGROUNDS)) % 2:
                travel = 1 - travel
            left = x0 + travel * (x1 - x0 - side)
            top = y0 + travel * (y1 - y0 - side)
            rgb = decoded.rgb.astype(np.float32) / 255
            out.append(_resampled(rgb, grid + left, grid + top))
    return out


def _png(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    if frame.format.name.startswith("gray"):
        return frame.to_ndarray(format="gray").astype(np.float32)[..., None] / 255
    return frame.to_ndarray(format="rgb24").astype(np.float32) / 255


def _open_ffv1(path: Path, pix_fmt: str) -> tuple[av.container.OutputContainer, av.video.stream.VideoStream]:
    container = av.open(str(path), "w")
    stream = container.add_stream("ffv1", rate=RATE)
    stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, pix_fmt
    return container, stream


def build_clips(shared: Path, work: Path, clips: int, frames: int) -> list[BenchClip]:
    """Write ``clips`` composite clips of ``frames`` frames and their true alpha into ``work`` (module doc)."""
    names = sorted(p.stem for p in (shared / "testdata" / "gt" / "alpha").glob("*.png"))[:clips]
    (work / "clips").mkdir(parents=True, exist_ok=True)
    (work / "gt").mkdir(parents=True, exist_ok=True)
    built = []
    for k, name in enumerate(names):
        image = _png(shared / "testdata" / "gt" / "image" / f"{name}.png")
        alpha = _png(shared / "testdata" / "gt" / "alpha" / f"{name}.png")
        item = BenchClip(name, work / "clips" / f"{name}.mkv", work / "gt" / f"{name}.mkv", float(alpha.mean()))
        comp_out, comp_stream = _open_ffv1(item.clip, "bgr0")
        gt_out, gt_stream = _open_ffv1(item.gt, "gray16le")
        with comp_out, gt_out:
            for t, background in enumerate(_background_frames(shared, k, frames)):
                xs, ys = _foreground_warp(k, len(names), t, frames)
                fg, pha = _resampled(image, xs, ys), _resampled(alpha, xs, ys)
                comp = pha * fg + (1 - pha) * background
                rgb = np.rint(np.clip(comp, 0, 1) * 255).astype(np.uint8)
                codes = np.rint(np.clip(pha[..., 0], 0, 1) * 65535).astype(np.uint16)
                comp_out.mux(comp_stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
                gt_out.mux(gt_stream.encode(av.VideoFrame.from_ndarray(codes, format="gray16le")))
            comp_out.mux(comp_stream.encode())
            gt_out.mux(gt_stream.encode())
        built.append(item)
    return built


# --- matting and scoring --------------------------------------------------------------------


def render_mattes(clips: list[BenchClip], out_dir: Path, ratio: str, device: str, warmup: int = 0) -> float:
    """Matte every clip at ``ratio`` (``"auto"`` or a number) into EXR under ``out_dir``; seconds taken.

    The one place the benchmark runs the engine: :func:`rvm_render.pipeline.render_clip`, as
    ``rvm-render matte`` does, with the default weights and engine options; ``warmup`` is
    ``--warmup`` (the warm start before each clip's first frame; its time is included).
    """
    options = EngineOptions(device=device, downsample_ratio=ratio if ratio == "auto" else float(ratio))
    matter = open_matter(None, options)
    settings = RenderSettings(formats=(OutputFormat.EXR,), overwrite=True, warmup_frames=warmup)
    started = time.perf_counter()
    for item in clips:
        render_clip(RenderRequest(item.clip, out_dir, stem=item.name), settings, matter)
    return time.perf_counter() - started


def scored_renders(out_dir: Path, gt_dir: Path) -> dict[str, ClipScores]:
    """Each clip's scores, as ``rvm-render eval OUT_DIR GT_DIR`` computes them."""
    return {pred.name: pair_scores(pred, gt) for pred, gt in matte_pairs(out_dir, gt_dir)}


# --- report ---------------------------------------------------------------------------------

_COLUMN = 8


def _figures(values: dict[str, float]) -> str:
    return "".join(f"{values[m]:>{_COLUMN}.3f}" for m in METRIC_NAMES)


def report_table(rows: list[tuple[str, str, float, dict[str, ClipScores]]], names: set[str]) -> str:
    """Per ratio the mean over the clips ``names``, whole and first frames, and fps; ``rows`` as main builds them."""
    label = max(len("ratio"), *(len(r[0]) for r in rows))
    header = "".join(f"{m:>{_COLUMN}}" for m in METRIC_NAMES)
    span = _COLUMN * len(METRIC_NAMES)
    first_frames = max(s.first_frames for row in rows for s in row[3].values())
    lines = [
        f"{'':<{label}} {'':>6}  {'whole clip':^{span}}  {f'first {first_frames} frames':^{span}}",
        f"{'ratio':<{label}} {'fps':>6}  {header}  {header}",
    ]
    for name, _, fps, scores in rows:
        whole = mean_scores([s.whole for clip, s in scores.items() if clip in names]).as_dict()
        first = mean_scores([s.first for clip, s in scores.items() if clip in names]).as_dict()
        lines.append(f"{name:<{label}} {fps:>6.1f}  {_figures(whole)}  {_figures(first)}")
    return "\n".join(lines)


def per_clip_table(rows: list[tuple[str, str, float, dict[str, ClipScores]]]) -> str:
    lines = [f"{'clip':<12} {'ratio':<10}  {''.join(f'{m:>{_COLUMN}}' for m in METRIC_NAMES)}"
             f"  {''.join(f'{m:>{_COLUMN}}' for m in METRIC_NAMES)}"]
    for name, _, _, scores in rows:
        for clip, s in scores.items():
            lines.append(f"{clip:<12} {name:<10}  {_figures(s.whole.as_dict())}  {_figures(s.first.as_dict())}")
    return "\n".join(lines)


def _ratio_label(ratio: str) -> str:
    if ratio != "auto":
        return f"{float(ratio):g}"
    from rvm_render.engine import auto_downsample_ratio

    return f"auto ({auto_downsample_ratio(SIZE, SIZE):g})"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_shared = os.environ.get("RVM_RENDER_SHARED") or str(Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--shared", type=Path, default=Path(default_shared),
                        help="shared data folder (default: $RVM_RENDER_SHARED, else ../shared beside the checkout)")
    parser.add_argument("--clips", type=int, default=12, help="clips to build, one per foreground (max 12)")
    parser.add_argument("--frames", type=int, default=FRAMES, help="frames per clip (default %(default)s)")
    parser.add_argument("--ratios", default=",".join(RATIOS), help="downsample ratios, 'auto' or numbers")
    parser.add_argument("--device", default="auto", help="engine device (auto, cpu, cuda:N)")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP_FRAMES,
                        help="warm-start frames before each clip, as rvm-render matte --warmup (default %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep clips, ground truth and mattes here")
    parser.add_argument("--per-clip", action="store_true", help="also print every clip's scores")
    parser.add_argument("--json", type=Path, default=None, help="also write every score here")
    parser.add_argument("--save", action="store_true", help=f"also write the report to {RESULTS}")
    args = parser.parse_args(argv)
    if not (args.shared / "testdata" / "gt").is_dir():
        parser.error(f"no testdata/gt in '{args.shared}'; set RVM_RENDER_SHARED or pass --shared")
    if not 1 <= args.frames or not 1 <= args.clips <= 12 or args.warmup < 0:
        parser.error("--clips takes 1..12, --frames a positive count and --warmup a count >= 0")
    ratios = [r.strip() for r in args.ratios.split(",") if r.strip()]
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="rvm-quality-"))
    started = time.perf_counter()
    try:
        clips = build_clips(args.shared, work, args.clips, args.frames)
        print(f"built {len(clips)} clips of {args.frames} frames in {work} "
              f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        rows = []
        for ratio in ratios:
            out_dir = work / "renders" / ratio
            elapsed = render_mattes(clips, out_dir, ratio, args.device, args.warmup)
            scores = scored_renders(out_dir, work / "gt")
            fps = len(clips) * args.frames / elapsed
            rows.append((_ratio_label(ratio), ratio, fps, scores))
            print(f"ratio {ratio}: matted at {fps:.1f} fps, scored "
                  f"({time.perf_counter() - started:.0f} s so far)", file=sys.stderr, flush=True)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    scaling = "; ".join(f"{m} {s}" for m, s in SCALING.items())
    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    cpu = _cpu_name()
    lines = [
        f"# bench/quality.py, {date.today().isoformat()}, {os.cpu_count()}-core {cpu}, torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}, device {'cuda' if cuda else 'cpu'}",
        f"Composite benchmark: {len(clips)} clips x {args.frames} frames, {SIZE}x{SIZE}, 24 fps; Composition-1k "
        "foregrounds (moving: scale 1.03-1.27, pan) over moving backgrounds from the shared clips; default weights, "
        f"--warmup {args.warmup}",
        f"mean over clips of per-clip means; {scaling} (the RVM paper's scaling); fps: matting incl. decode and EXR",
        "",
        f"all {len(clips)} clips",
        report_table(rows, {c.name for c in clips}),
    ]
    in_view = {c.name for c in clips if c.fill < FILL_LIMIT}
    if in_view:
        lines += ["", f"the {len(in_view)} clips with background in view (crop's mean alpha < {FILL_LIMIT}: "
                  f"a head against background; see FILL_LIMIT)", report_table(rows, in_view)]
    if args.per_clip:
        lines += ["", per_clip_table(rows)]
    lines.append(f"\n({time.perf_counter() - started:.0f} s in all)")
    text = "\n".join(lines)
    print(text)
    if args.save:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(text + "\n")
    if args.json:
        document = {
            row[1]: {"fps": row[2], "clips": {c: {"whole": s.whole.as_dict(), "first": s.first.as_dict()}
                                              for c, s in row[3].items()}}
            for row in rows
        }
        args.json.write_text(json.dumps(document, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
