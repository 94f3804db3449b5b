"""One clip, one pass: decode -> matte -> every selected deliverable, plus the manifest."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psutil
import torch

from rvm_render.engine.matter import Matter
from rvm_render.errors import ConfigError, OutputExistsError, UnreadableMediaError
from rvm_render.media.colour import non_bt709_reason
from rvm_render.media.commit import writing_to
from rvm_render.media.fingerprint import InputFingerprint
from rvm_render.media.frame_pattern import frame_field, unescaped
from rvm_render.media.probe import MediaInfo, probe
from rvm_render.media.reader import open_reader
from rvm_render.media.writers import (
    Background,
    MatteWriter,
    OutputFormat,
    WrittenOutput,
    open_writer,
)
from rvm_render.pipeline.defaults import DEFAULT_FORMATS, DEFAULT_WARMUP_FRAMES
from rvm_render.pipeline.device_path import device_feed, host_feed
from rvm_render.pipeline.manifest import Manifest, commit_manifest, look_of, manifest_path_for
from rvm_render.pipeline.progress import ProgressCallback, ProgressEvent
from rvm_render.pipeline.stages import run_stages

log = logging.getLogger(__name__)

__all__ = [
    "RenderRequest",
    "RenderSettings",
    "RenderResult",
    "render_clip",
    "render_frames",
    "warm_up",
    "open_writers",
    "close_writers",
    "clip_stem",
    "output_stem",
    "frame_range",
    "infer_steps",
    "warn_if_not_bt709",
]

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
        warmup_frames: Warm start: before the first frame of each shot the network runs over the
            shot's next ``warmup_frames`` frames in reverse and discards them (:func:`warm_up`).
        convert_on_device: Make each writer's payload (Y'CbCr planes, half floats, ...) on the
            engine's device and bring back only that (:mod:`~rvm_render.pipeline.device_path`);
            ``"auto"``: on CUDA only. On the CPU the writers' numpy conversions run on their own
            threads in parallel with the engine, as fast and bit-exact with the golden outputs.
    """

    formats: tuple[OutputFormat, ...] = DEFAULT_FORMATS
    background: Background | None = None
    overwrite: bool = False
    batch_frames: int = DEFAULT_BATCH_FRAMES
    queue_batches: int = 2
    warmup_frames: int = DEFAULT_WARMUP_FRAMES
    convert_on_device: bool | Literal["auto"] = "auto"

    @property
    def look(self) -> dict[str, Any]:
        """What these settings do to the pictures besides the engine, as manifests record it (:func:`look_of`)."""
        return look_of(self.formats, self.background, self.warmup_frames)

    def converts_on_device(self, device: torch.device) -> bool:
        """Whether payloads are made on ``device`` (see ``convert_on_device``)."""
        return device.type == "cuda" if self.convert_on_device == "auto" else bool(self.convert_on_device)

    def __post_init__(self) -> None:
        if not self.formats:
            raise ConfigError("formats: empty; choose from " + ", ".join(f.value for f in OutputFormat))
        if self.batch_frames < 1:
            raise ConfigError(f"batch_frames: {self.batch_frames} is not a positive frame count")
        if self.warmup_frames < 0:
            raise ConfigError(f"warmup: {self.warmup_frames} is not a frame count (a whole number >= 0)")


@dataclass(frozen=True, slots=True)
class RenderRequest:
    """One clip to matte, optionally a range of it by frame number (inclusive).

    Frame numbers are those users see: for an image sequence the numbers in its file names
    (``shot.1001.exr`` is frame 1001), for a movie the 0-based frame index. ``stem`` names the
    outputs (``<stem>_matte.mov`` ...); default: the input's (:func:`clip_stem`).
    """

    input_path: Path
    output_dir: Path
    first_frame: int | None = None
    last_frame: int | None = None
    stem: str | None = None


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What one render produced."""

    info: MediaInfo
    manifest_path: Path
    outputs: tuple[WrittenOutput, ...]
    frames: int
    downsample_ratio: float
    elapsed_s: float = field(default=0.0)
    kept: bool = False
    """True when an earlier render was still current and kept as it was (nothing rendered)."""

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0


def clip_stem(info: MediaInfo) -> str:
    """The name outputs are based on: the file stem, or a sequence name without its frame field.

    ``shot.%04d.exr`` -> ``shot``, ``plate_%04d_v2.dpx`` -> ``plate_v2``; a still image keeps its
    stem. The stem is literal text (``take 100%``); output patterns escape it.
    """
    if not info.is_sequence:
        return info.path.stem
    name = info.path.name
    extension = Path(unescaped(name)).suffix
    field = frame_field(name)
    if field is None:
        return unescaped(name)[: len(unescaped(name)) - len(extension)] or "image"
    after = field.suffix(name)
    return (field.prefix(name).rstrip("._-") + after[: len(after) - len(extension)]) or "sequence"


def output_stem(request: RenderRequest, info: MediaInfo) -> str:
    """The stem a request's outputs are named by: its own, else the input's (:func:`clip_stem`)."""
    return request.stem or clip_stem(info)


def frame_range(request: RenderRequest, info: MediaInfo) -> tuple[int, int]:
    """The request's inclusive range as 0-based frame indices, defaulting to the whole clip.

    Raises:
        ConfigError: the range lies outside the clip.
    """
    first = info.first_frame_number if request.first_frame is None else request.first_frame
    last = info.last_frame_number if request.last_frame is None else request.last_frame
    if not info.first_frame_number <= first <= last <= info.last_frame_number:
        raise ConfigError(
            f"frames: {first}-{last} is outside '{info.path.name}', which holds frames "
            f"{info.first_frame_number}-{info.last_frame_number}; pick --frames within them"
        )
    return info.frame_index(first), info.frame_index(last)


def warn_if_not_bt709(info: MediaInfo) -> None:
    """Warn (once per clip: call it when a render is planned) when the source is not SDR BT.709.

    RVM was trained on SDR BT.709 video; HDR (PQ, HLG), wide-gamut or linear material is matted
    as it is, usually less accurately. Its outputs keep the source's colour tags.
    """
    reason = non_bt709_reason(info.color_primaries, info.color_trc)
    if reason is not None:
        log.warning(
            "'%s' is not SDR BT.709 (%s): the network was trained on SDR BT.709 video, so its mattes may be "
            "less accurate; outputs keep the source's colour tags",
            info.path, reason,
        )


def infer_steps(matter: Matter, *, on_device: bool = False) -> list[Callable[[Any], Any]]:
    """The matter's steps, the last one returning ``(fgr, pha)`` as the stages take them.

    Args:
        on_device: leave fgr and pha on the matter's device (see :meth:`Matter.steps`).
    """
    *leading, last = matter.steps(on_device=on_device)

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
    on_device = settings.converts_on_device(matter.device)
    with open_reader(info, first_frame=first_frame, last_frame=last_frame) as frames:
        written = run_stages(
            frames,
            infer_steps(matter, on_device=on_device),
            writers,
            batch_frames=settings.batch_frames,
            queue_batches=settings.queue_batches,
            on_batch_done=on_frames_done,
            device=matter.device,
            feeds=[device_feed(writer) if on_device else host_feed(writer) for writer in writers],
        )
    if written != frames_total:
        raise UnreadableMediaError(
            f"'{info.path}': decoded {written} of {frames_total} frames (truncated or corrupt);"
            " re-export or re-copy the file"
        )
    return written


def warm_up(info: MediaInfo, matter: Matter, *, first_frame: int, last_frame: int, settings: RenderSettings) -> int:
    """Warm start: converge a fresh recurrent state on the frames a shot opens with.

    RVM's decoder starts every shot from an empty state, so its first frames are matted from
    too little context and settle over the next dozen or so. Here the network runs over frames
    ``last_frame`` down to ``first_frame`` (reverse order: the state ends on the shot's first
    frame, as if the shot had been running) and every output is discarded; the real render
    then starts at ``first_frame`` from that state. Call it only where the state starts fresh
    (a clip's first frame, a shot cut), never at a segment boundary: sequential segments hand
    their state over, so resumed renders stay bit-exact.

    The frames are decoded once, forward, and kept as decoded (``last_frame - first_frame + 1``
    pictures in memory). ``bench/warmup.py`` measures what it buys and costs per frame count.

    Returns:
        The number of frames matted.
    """
    with open_reader(info, first_frame=first_frame, last_frame=last_frame) as reader:
        frames = list(reader)
    return run_stages(reversed(frames), infer_steps(matter), [], batch_frames=settings.batch_frames,
                      queue_batches=settings.queue_batches, device=matter.device)  # fmt: skip


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
    *,
    info: MediaInfo | None = None,
) -> RenderResult:
    """Matte one clip into every deliverable of ``settings`` and write its manifest.

    Outputs are written under temp names and renamed only when every deliverable of the
    clip is complete; on any error or interrupt the temps are removed. With
    ``settings.overwrite`` the clip's earlier render is replaced whole (see
    :func:`~rvm_render.pipeline.manifest.commit_manifest`).

    Args:
        info: the input as :func:`~rvm_render.media.probe.probe` describes it, when the caller
            has probed it already (default: probed here).

    Raises:
        MediaError: The input cannot be read (missing, corrupt, truncated, not video).
        OutputExistsError: An output exists and ``settings.overwrite`` is False.
        OutputError: An output cannot be written (folder missing or read-only, disk full).
        ConfigError: The frame range lies outside the clip.
    """
    info = probe(request.input_path) if info is None else info
    first, last = frame_range(request, info)
    frames_total = last - first + 1
    stem = output_stem(request, info)
    with writing_to(request.output_dir):
        request.output_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = manifest_path_for(request.output_dir, stem)
    if manifest_path.exists() and not settings.overwrite:
        raise OutputExistsError(f"'{manifest_path}' exists; pass --overwrite to replace it")

    warn_if_not_bt709(info)
    fingerprint = InputFingerprint.of_media(info)  # before decoding: the input as it was when rendered
    ratio = matter.downsample_ratio_for(info.height, info.width)
    log.info("matting '%s': frames %d-%d at downsample ratio %.4g",
             info.path, info.frame_number(first), info.frame_number(last), ratio)
    matter.reset()
    if settings.warmup_frames:
        warm_up(info, matter, first_frame=first, last_frame=min(last, first + settings.warmup_frames - 1),
                settings=settings)  # fmt: skip
    started = time.perf_counter()
    first_out: list[float] = []  # seconds from the start to the first frames written (the render's latency)

    def report(frames_done: int) -> None:
        elapsed = time.perf_counter() - started
        if frames_done and not first_out:
            first_out.append(elapsed)
        if on_progress is not None:
            on_progress(ProgressEvent(info.path, frames_done, frames_total, elapsed, label=request.stem))

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
        input_fingerprint=fingerprint,
        look=settings.look,
    )
    commit_manifest(manifest, manifest_path, overwrite=settings.overwrite)
    log.info("matted '%s': %d frames in %.1f s (%.2f fps), the first written after %.2f s; %.1f s since the "
             "process started", info.path, frames_total, elapsed, frames_total / elapsed, first_out[0],
             time.time() - psutil.Process().create_time())  # fmt: skip
    return RenderResult(info, manifest_path, outputs, frames_total, ratio, elapsed)
