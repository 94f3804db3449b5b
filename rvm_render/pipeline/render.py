"""One clip, one pass: decode -> matte -> every selected deliverable, plus the manifest."""

from __future__ import annotations

import logging
from functools import partial
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

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

__all__ = ["RenderRequest", "RenderSettings", "RenderResult", "render_clip", "clip_stem"]

DEFAULT_FORMATS = (OutputFormat.PRORES4444, OutputFormat.EXR)


@dataclass(frozen=True, slots=True)
class RenderSettings:
    """How to render, shared by every clip of a run.

    Args:
        formats: Deliverables written in one pass.
        background: Backdrop of the ``comp`` deliverable (default: green screen colour).
        overwrite: Replace existing outputs instead of refusing.
        batch_frames: Frames per engine call; the recurrent state still flows frame to frame.
        queue_batches: Batches in flight per queue; bounds memory.
    """

    formats: tuple[OutputFormat, ...] = DEFAULT_FORMATS
    background: Background | None = None
    overwrite: bool = False
    batch_frames: int = 4
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


def _frame_range(request: RenderRequest, info: MediaInfo) -> tuple[int, int]:
    first = 0 if request.first_frame is None else request.first_frame
    last = info.frames - 1 if request.last_frame is None else request.last_frame
    if not 0 <= first <= last < info.frames:
        raise ConfigError(
            f"frames: {first}-{last} is outside '{info.path.name}' (frames 0-{info.frames - 1})"
        )
    return first, last


def _matted(matter: Matter, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    batch = matter.matte(src)
    return batch.fgr, batch.pha


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
    first, last = _frame_range(request, info)
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

    writers: list[MatteWriter] = []
    try:
        for fmt in settings.formats:
            writers.append(
                open_writer(
                    fmt,
                    request.output_dir,
                    stem,
                    info,
                    background=settings.background,
                    overwrite=settings.overwrite,
                )
            )
        report(0)
        with open_reader(info, first_frame=first, last_frame=last) as frames:
            written = run_stages(
                frames,
                partial(_matted, matter),
                writers,
                batch_frames=settings.batch_frames,
                queue_batches=settings.queue_batches,
                on_batch_done=report,
            )
        if written != frames_total:
            raise UnreadableMediaError(
                f"'{info.path}': decoded {written} of {frames_total} frames (truncated or corrupt);"
                " re-export or re-copy the file"
            )
        outputs = tuple(writer.close() for writer in writers)
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
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
