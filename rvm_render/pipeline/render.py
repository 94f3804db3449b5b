"""One clip, one pass: decode -> matte -> every selected deliverable, plus the manifest."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rvm_render.engine.matter import Matter
from rvm_render.errors import ConfigError, OutputExistsError, UnreadableMediaError
from rvm_render.media.probe import MediaInfo, probe
from rvm_render.media.reader import open_reader
from rvm_render.media.writers import (
    Background,
    MatteWriter,
    OutputFormat,
    WrittenOutput,
    open_writer,
)
from rvm_render.pipeline.manifest import Manifest, manifest_path_for, write_manifest
from rvm_render.pipeline.progress import ProgressCallback, ProgressEvent
from rvm_render.pipeline.stages import run_stages

log = logging.getLogger(__name__)

__all__ = [
    "RenderRequest",
    "RenderSettings",
    "RenderResult",
    "render_clip",
    "render_frames",
    "open_writers",
    "close_writers",
    "clip_stem",
    "frame_range",
    "infer_steps",
]

DEFAULT_FORMATS = (OutputFormat.PRORES4444, OutputFormat.EXR)
DEFAULT_BATCH_FRAMES = 1


@dataclass(frozen=True, slots=True)
class RenderSettings:
    """How to render, shared by every clip of a run.

    Args:
        formats: Deliverables written in one pass.
        background: Backdrop of the ``comp`` deliverable (default: green screen colour).
        overwrite: Replace existing outputs instead of refusing.
        batch_frames: Frames per engine call; the recurrent state still flows frame to frame.
            1 suits the CPU; see :func:`~rvm_render.engine.preferred_batch_frames`.
        queue_batches: Batches in flight per queue; bounds memory.
    """

    formats: tuple[OutputFormat, ...] = DEFAULT_FORMATS
    background: Background | None = None
    overwrite: bool = False
    batch_frames: int = DEFAULT_BATCH_FRAMES
    queue_batches: int = 2

    def __post_init__(self) -> None:
        if not self.formats:
            raise ConfigError("formats: empty; choose from " + ", ".join(f.value for f in OutputFormat))
        if self.batch_frames < 1:
            raise ConfigError(f"batch_frames: {self.batch_frames} is not a positive frame count")


@dataclass(frozen=True, slots=True)
class RenderRequest:
    """One clip to matte, optionally a range of it (inclusive, 0-based frame indices)."""

    input_path: Path
    output_dir: Path
    first_frame: int | None = None
    last_frame: int | None = None


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What one render produced."""

    info: MediaInfo
    manifest_path: Path
    outputs: tuple[WrittenOutput, ...]
    frames: int
    downsample_ratio: float
    elapsed_s: float = field(default=0.0)

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0


def clip_stem(info: MediaInfo) -> str:
    """The name outputs are based on: the file stem, or a sequence name without its frame field."""
    if not info.is_sequence:
        return info.path.stem
    name = re.sub(r"(%0?\d*d|#+|\d+)$", "", Path(info.path.stem).name)
    return name.rstrip("._-") or "sequence"


def frame_range(request: RenderRequest, info: MediaInfo) -> tuple[int, int]:
    """The request's inclusive frame range, defaulting to the whole clip.

    Raises:
        ConfigError: the range lies outside the clip.
    """
    first = 0 if request.first_frame is None else request.first_frame
    last = info.frames - 1 if request.last_frame is None else request.last_frame
    if not 0 <= first <= last < info.frames:
        raise ConfigError(f"frames: {first}-{last} is outside '{info.path.name}' (frames 0-{info.frames - 1})")
    return first, last


def infer_steps(matter: Matter) -> list[Callable[[Any], Any]]:
    """The matter's steps, the last one returning ``(fgr, pha)`` as the stages take them."""
    *leading, last = matter.steps()

    def matted(item: Any) -> tuple[torch.Tensor, torch.Tensor]:
        batch = last(item)
        return batch.fgr, batch.pha

    return [*leading, matted]


def open_writers(
    settings: RenderSettings,
    output_dir: Path,
    stem: str,
    info: MediaInfo,
    *,
    overwrite: bool | None = None,
    audio: bool = True,
    background_first_frame: int = 0,
) -> list[MatteWriter]:
    """Open one writer per deliverable of ``settings``; if one fails, the others are aborted.

    Args:
        overwrite: replace existing outputs; default ``settings.overwrite``.
        audio, background_first_frame: see :func:`rvm_render.media.writers.open_writer`.

    Raises:
        OutputExistsError: an output exists and overwriting is off.
        MediaError: a deliverable cannot be written for this clip.
    """
    writers: list[MatteWriter] = []
    try:
        for fmt in settings.formats:
            writers.append(
                open_writer(
                    fmt,
                    output_dir,
                    stem,
                    info,
                    background=settings.background,
                    overwrite=settings.overwrite if overwrite is None else overwrite,
                    audio=audio,
                    background_first_frame=background_first_frame,
                )
            )
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    return writers


def render_frames(
    info: MediaInfo,
    matter: Matter,
    writers: list[MatteWriter],
    *,
    first_frame: int,
    last_frame: int,
    settings: RenderSettings,
    on_frames_done: Callable[[int], None] | None = None,
) -> int:
    """Matte frames ``first_frame`` .. ``last_frame`` of a clip into open writers.

    Decode, inference and encode overlap (:func:`~rvm_render.pipeline.stages.run_stages`).
    The matter starts from whatever recurrent state it holds and keeps the state after the
    last frame; batches of ``settings.batch_frames`` start at ``first_frame``. With no writers
    the frames are only matted (a warm-up of the state). Writers are neither closed nor
    aborted here.

    Args:
        on_frames_done: called with the frames of this range written by every writer so far.

    Returns:
        The number of frames matted.

    Raises:
        UnreadableMediaError: the clip ends early or is corrupt.
    """
    frames_total = last_frame - first_frame + 1
    with open_reader(info, first_frame=first_frame, last_frame=last_frame) as frames:
        written = run_stages(
            frames,
            infer_steps(matter),
            writers,
            batch_frames=settings.batch_frames,
            queue_batches=settings.queue_batches,
            on_batch_done=on_frames_done,
        )
    if written != frames_total:
        raise UnreadableMediaError(
            f"'{info.path}': decoded {written} of {frames_total} frames (truncated or corrupt);"
            " re-export or re-copy the file"
        )
    return written


def close_writers(writers: list[MatteWriter]) -> tuple[WrittenOutput, ...]:
    """Commit every writer; if one fails, abort the ones not committed yet and re-raise."""
    outputs: list[WrittenOutput] = []
    try:
        for writer in writers:
            outputs.append(writer.close())
    except BaseException:
        for writer in writers[len(outputs) :]:
            writer.abort()
        raise
    return tuple(outputs)


def render_clip(
    request: RenderRequest,
    settings: RenderSettings,
    matter: Matter,
    on_progress: ProgressCallback | None = None,
) -> RenderResult:
    """Matte one clip into every deliverable of ``settings`` and write its manifest.

    Outputs are written under temp names and renamed only when every deliverable of the
    clip is complete; on any error or interrupt the temps are removed.

    Raises:
        MediaError: The input cannot be read (missing, corrupt, truncated, not video).
        OutputExistsError: An output exists and ``settings.overwrite`` is False.
        ConfigError: The frame range lies outside the clip.
    """
    info = probe(request.input_path)
    first, last = frame_range(request, info)
    frames_total = last - first + 1
    stem = clip_stem(info)
    request.output_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = manifest_path_for(request.output_dir, stem)
    if manifest_path.exists() and not settings.overwrite:
        raise OutputExistsError(f"'{manifest_path}' exists; pass --overwrite to replace it")

    ratio = matter.downsample_ratio_for(info.height, info.width)
    log.info("matting '%s': frames %d-%d at downsample ratio %.4g", info.path, first, last, ratio)
    matter.reset()
    started = time.perf_counter()

    def report(frames_done: int) -> None:
        if on_progress is not None:
            elapsed = time.perf_counter() - started
            on_progress(ProgressEvent(info.path, frames_done, frames_total, elapsed))

    writers = open_writers(settings, request.output_dir, stem, info)
    try:
        report(0)
        render_frames(
            info, matter, writers, first_frame=first, last_frame=last, settings=settings, on_frames_done=report
        )
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    outputs = close_writers(writers)
    elapsed = time.perf_counter() - started
    report(frames_total)
    manifest = Manifest(
        info=info,
        first_frame=first,
        last_frame=last,
        variant=matter.variant,
        weights_sha256=matter.weights_sha256,
        downsample_ratio=ratio,
        outputs=outputs,
    )
    write_manifest(manifest, manifest_path)
    log.info("matted '%s': %d frames in %.1f s (%.2f fps)", info.path, frames_total, elapsed, frames_total / elapsed)
    return RenderResult(info, manifest_path, outputs, frames_total, ratio, elapsed)
