"""Segmented renders: plan a clip into a work dir, render its segments, resume after a crash.

A segmented render is a single pass cut into pieces that can stop and start:

1. :func:`prepare_work_dir` detects shot cuts (one decode pass, skipped when resuming: the
   cuts are in ``plan.json``), plans segments (:func:`~rvm_render.jobs.segments.plan_segments`)
   and opens the work dir (:class:`~rvm_render.jobs.checkpoint.WorkDir`) with a
   :class:`~rvm_render.jobs.checkpoint.RenderSpec`: everything another process needs.
2. :func:`render_segment` renders one segment with the same decode/infer/encode stages as a
   single pass (:func:`~rvm_render.pipeline.render.render_frames`) into
   ``WORKDIR/segments/<K>/``: movie deliverables as one part per segment (no audio), frame
   sequences as files numbered by their final frame numbers; then checkpoints the recurrent
   state and marks the segment done (atomically, done file last).
3. :func:`~rvm_render.jobs.assemble.assemble_outputs` joins the parts into the deliverables.

:func:`render_segmented` does all three on one engine, skipping segments already done.

Bit-exactness (sequential mode): a segment starts from the state the previous one saved
(``RecurrentState.to_bytes`` round-trips exactly), and segment lengths are multiples of the
engine batch (``SegmentPolicy.frame_multiple = batch_frames``), so every batch holds the same
frames as in one pass; on CPU the engine mattes frame by frame anyway. A resumed render and a
single pass over the same frames therefore give identical mattes. The warm start
(``--warmup``) runs only where a shot starts (a segment with ``starts_at_cut``), exactly where a
single pass runs it, so it keeps that promise.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rvm_render.engine.matter import Matter
from rvm_render.engine.state import RecurrentState
from rvm_render.errors import CheckpointMismatchError, JobError, OutputExistsError
from rvm_render.jobs.assemble import assemble_outputs, check_outputs_free
from rvm_render.jobs.checkpoint import (
    PLAN_FILE,
    CompletedSegment,
    JobPlan,
    RenderSpec,
    WorkDir,
    default_work_dir,
    plan_for,
)
from rvm_render.jobs.cuts import detect_cuts_in_clip
from rvm_render.jobs.earlier_render import EarlierRender
from rvm_render.jobs.extension import extension_cuts, extension_segments, kept_range, mark_earlier_done
from rvm_render.jobs.segments import PlanMode, Segment, SegmentPolicy
from rvm_render.media.probe import MediaInfo, probe, sequence_frame_path
from rvm_render.media.writers import OutputFormat, WrittenOutput
from rvm_render.pipeline.manifest import manifest_path_for
from rvm_render.pipeline.progress import ProgressCallback, ProgressEvent
from rvm_render.pipeline.render import (
    RenderRequest,
    RenderResult,
    RenderSettings,
    close_writers,
    frame_range,
    open_writers,
    output_stem,
    render_frames,
    warm_up,
    warn_if_not_bt709,
)

log = logging.getLogger(__name__)

__all__ = [
    "SEGMENTS_DIR",
    "prepare_work_dir",
    "render_segment",
    "render_segmented",
    "segment_folder",
    "settings_from_spec",
    "work_dir_for",
]

SEGMENTS_DIR = "segments"


def segment_folder(work: WorkDir, index: int) -> Path:
    """``WORKDIR/segments/<index, 5 digits>``: where segment ``index`` writes its deliverables."""
    return work.path / SEGMENTS_DIR / f"{index:05d}"


def work_dir_for(request: RenderRequest, info: MediaInfo, work_dir: str | os.PathLike[str] | None = None) -> Path:
    """The work dir a render uses: ``work_dir`` if given, else ``OUTDIR/.rvm-work/<stem>``."""
    return Path(work_dir) if work_dir is not None else default_work_dir(request.output_dir, output_stem(request, info))


def settings_from_spec(spec: RenderSpec, *, overwrite: bool = False) -> RenderSettings:
    """The :class:`RenderSettings` a spec records (``overwrite`` is not part of a spec)."""
    return RenderSettings(
        formats=tuple(OutputFormat(name) for name in spec.formats),
        background=spec.background,
        overwrite=overwrite,
        batch_frames=spec.batch_frames,
        warmup_frames=spec.warmup_frames,
    )


def _fingerprint_path(info: MediaInfo) -> Path:
    """The file a plan fingerprints: the container, or an image sequence's first frame."""
    return sequence_frame_path(info, 0) if info.is_sequence else info.path


def _spec_for(
    request: RenderRequest,
    settings: RenderSettings,
    matter: Matter,
    info: MediaInfo,
    weights_path: str | os.PathLike[str] | None,
) -> RenderSpec:
    first, last = frame_range(request, info)
    return RenderSpec(
        input_path=str(Path(info.path).absolute()),
        output_dir=str(Path(request.output_dir).absolute()),
        stem=output_stem(request, info),
        first_frame=first,
        last_frame=last,
        formats=tuple(fmt.value for fmt in settings.formats),
        background=settings.background,
        downsample_ratio=matter.downsample_ratio_for(info.height, info.width),
        batch_frames=settings.batch_frames,
        device=matter.options.device,
        precision=matter.options.precision,
        variant=matter.variant,
        weights_path=None if weights_path is None else str(Path(weights_path).absolute()),
        weights_sha256=matter.weights_sha256 or "",
        warmup_frames=settings.warmup_frames,
        rate=str(info.rate),
        timecode=info.timecode,
    )


def _recorded_cuts(path: Path, info: MediaInfo) -> tuple[int, ...] | None:
    """Cuts of an existing plan for the same input file, so a resume need not detect them again."""
    if not (path / PLAN_FILE).is_file():
        return None
    try:
        existing = WorkDir.load(path)
        existing.check_input()
    except JobError:
        return None  # WorkDir.open reports the mismatch
    return existing.plan.cuts


def prepare_work_dir(
    request: RenderRequest,
    settings: RenderSettings,
    matter: Matter,
    policy: SegmentPolicy,
    *,
    mode: PlanMode = "sequential",
    work_dir: str | os.PathLike[str] | None = None,
    weights_path: str | os.PathLike[str] | None = None,
    info: MediaInfo | None = None,
    extending: EarlierRender | None = None,
) -> WorkDir:
    """Plan a segmented render and create its work dir, or reopen the one made by the same command.

    Shot cuts are detected with one decode pass (:func:`~rvm_render.jobs.cuts.detect_cuts_in_clip`)
    unless the work dir already holds a plan for this input. Segment lengths are aligned to
    ``settings.batch_frames`` (``policy.frame_multiple`` is replaced by it). A render ``extending``
    an earlier one renders only the frames it lacks (:mod:`~rvm_render.jobs.extension`).

    Args:
        request: the clip, its output folder and frame range.
        settings: deliverables and batching.
        matter: the engine; gives the weights digest, variant, options and downsample ratio.
        policy: segment length and preroll.
        mode: ``"sequential"`` (state handed over, bit-exact) or ``"parallel"`` (preroll).
        work_dir: default ``OUTDIR/.rvm-work/<stem>``.
        weights_path: the weights, recorded so that segment tasks find them; None: tasks use
            the usual lookup (and check the digest).
        info: the input, when the caller has probed it already (default: probed here).
        extending: an earlier render of the same input whose frames (inside the request's range)
            are kept as they are, a segment done from the start.

    Returns:
        The opened work dir.

    Raises:
        CheckpointMismatchError: the work dir belongs to another input, model, settings or plan.
        MediaError, ConfigError: unreadable input or frame range outside it.
    """
    info = probe(request.input_path) if info is None else info
    first, last = frame_range(request, info)
    warn_if_not_bt709(info)
    spec = _spec_for(request, settings, matter, info, weights_path)
    path = work_dir_for(request, info, work_dir)
    policy = dataclasses.replace(policy, frame_multiple=settings.batch_frames)
    kept = None if extending is None else kept_range(extending, info)
    cuts = _recorded_cuts(path, info)
    if cuts is None:
        log.info("detecting shot cuts in '%s' (frames %d-%d)", info.path, first, last)
        started = time.perf_counter()
        cuts = tuple(detect_cuts_in_clip(info, first_frame=first, last_frame=last) if kept is None
                     else extension_cuts(info, first, last, kept, policy.preroll_frames))  # fmt: skip
        log.info("%d shot cuts in '%s' (%.2f s to decode and compare its frames)", len(cuts), info.path,
                 time.perf_counter() - started)  # fmt: skip
    plan = plan_for(
        _fingerprint_path(info),
        spec.weights_sha256,
        spec.output_settings(),
        last - first + 1,
        cuts,
        policy,
        mode,
        first_frame=first,
        spec=spec,
    )
    if kept is None:
        return WorkDir.open(path, plan)
    work = WorkDir.open(path, dataclasses.replace(plan, segments=extension_segments(first, last, kept, cuts, policy)))
    mark_earlier_done(work, spec, extending, kept)
    return work


def _spec_of(work: WorkDir) -> RenderSpec:
    if work.plan.spec is None:
        raise JobError(
            f"work dir '{work.path}' has no render settings in {PLAN_FILE} (planned for scheduling only); "
            "plan it with rvm-render matte or rvm-render farm"
        )
    return work.plan.spec


def _check_matter(work: WorkDir, spec: RenderSpec, matter: Matter) -> None:
    if matter.weights_sha256 != spec.weights_sha256:
        raise CheckpointMismatchError(
            f"work dir '{work.path}' was planned with weights sha256 {spec.weights_sha256[:12]}..., "
            f"this engine has {str(matter.weights_sha256)[:12]}...; pass the weights it names "
            f"({spec.weights_path or 'see plan.json'}) with --weights"
        )
    if spec.precision != "auto" and matter.precision != spec.precision:
        raise CheckpointMismatchError(
            f"work dir '{work.path}' was planned for {spec.precision}, this engine runs {matter.precision}; "
            f"pass --precision {spec.precision}"
        )


@contextmanager
def _downsample_ratio(matter: Matter, ratio: float) -> Iterator[None]:
    """Run ``matter`` at the plan's resolved ratio (one engine may serve plans made with others)."""
    saved = matter.options
    matter.options = dataclasses.replace(saved, downsample_ratio=ratio)
    try:
        yield
    finally:
        matter.options = saved


def _output_record(output: WrittenOutput, work: WorkDir) -> dict[str, Any]:
    return {
        "format": output.format.value,
        "path": str(Path(output.path).relative_to(work.path)),
        "first_frame": output.first_frame,
        "last_frame": output.last_frame,
    }


def _shot_last_frame(plan: JobPlan, segment: Segment) -> int:
    """The last frame of the shot ``segment`` belongs to: before the next segment that starts a shot."""
    later_shots = [s.first_frame for s in plan.segments if s.starts_at_cut and s.first_frame > segment.first_frame]
    return min(later_shots) - 1 if later_shots else plan.segments[-1].last_frame


def render_segment(
    work_dir: WorkDir | str | os.PathLike[str],
    index: int,
    matter: Matter,
    *,
    on_progress: ProgressCallback | None = None,
) -> CompletedSegment:
    """Render segment ``index`` of a work dir into ``WORKDIR/segments/<index>/`` and checkpoint it.

    The segment starts from the state the segment it depends on saved (sequential plans), or
    from a fresh state: at a shot cut, or after matting its preroll frames and discarding them
    (parallel plans). A segment already done is skipped. A segment stopped half-way leaves
    nothing that counts: its folder is cleared when it runs again.

    Args:
        work_dir: a :class:`WorkDir` or its path (then loaded as it is).
        index: the segment.
        matter: the engine (its weights must be the plan's; the plan's downsample ratio is used).
        on_progress: events for this segment's frames (``frames_total`` = the segment's length).

    Returns:
        The segment's done record (outputs listed relative to the work dir).

    Raises:
        JobError: the segment it depends on has not finished, or its state is corrupt.
        JobNotFoundError: no such segment.
        CheckpointMismatchError: the input changed since planning, or other weights/precision.
        MediaError: the input cannot be read.
    """
    work = work_dir if isinstance(work_dir, WorkDir) else WorkDir.load(work_dir)
    spec = _spec_of(work)
    segment = work.plan.segment(index)
    done = work.completed(index)
    if done is not None:
        log.info("segment %d (frames %d-%d) already done; skipped", index, segment.first_frame, segment.last_frame)
        return done
    state_bytes = work.state_before(index)
    _check_matter(work, spec, matter)
    work.check_input()
    info = spec.input_info()
    folder = segment_folder(work, index)
    shutil.rmtree(folder, ignore_errors=True)  # whatever a stopped run left
    folder.mkdir(parents=True)
    settings = settings_from_spec(spec)
    started = time.perf_counter()
    log.info("segment %d: frames %d-%d of '%s'", index, segment.first_frame, segment.last_frame, info.path)

    def report(frames_done: int) -> None:
        if on_progress is not None:
            on_progress(ProgressEvent(info.path, frames_done, segment.frames, time.perf_counter() - started))

    with _downsample_ratio(matter, spec.downsample_ratio):
        if state_bytes is None:
            matter.reset()
        else:
            matter.state = RecurrentState.from_bytes(state_bytes)
        if segment.starts_at_cut and settings.warmup_frames:
            last = min(segment.first_frame + settings.warmup_frames - 1, _shot_last_frame(work.plan, segment))
            log.info("segment %d: warm start on frames %d-%d", index, segment.first_frame, last)
            warm_up(info, matter, first_frame=segment.first_frame, last_frame=last, settings=settings)
        if segment.preroll_first_frame is not None and segment.preroll_first_frame < segment.first_frame:
            log.info("segment %d: warming up the state on frames %d-%d", index,
                     segment.preroll_first_frame, segment.first_frame - 1)
            render_frames(info, matter, [], first_frame=segment.preroll_first_frame,
                          last_frame=segment.first_frame - 1, settings=settings)
        writers = open_writers(
            settings, folder, spec.stem, info, overwrite=True, audio=False,
            background_first_frame=segment.first_frame - spec.first_frame,
        )
        try:
            report(0)
            render_frames(info, matter, writers, first_frame=segment.first_frame,
                          last_frame=segment.last_frame, settings=settings, on_frames_done=report)
        except BaseException:
            for writer in writers:
                writer.abort()
            raise
        outputs = close_writers(writers)
    has_dependents = any(other.depends_on == index for other in work.plan.segments)
    record = work.mark_done(
        index,
        matter.state.to_bytes() if has_dependents else None,
        [_output_record(output, work) for output in outputs],
    )
    report(segment.frames)
    return record


def render_segmented(
    request: RenderRequest,
    settings: RenderSettings,
    matter: Matter,
    policy: SegmentPolicy,
    *,
    mode: PlanMode = "sequential",
    work_dir: str | os.PathLike[str] | None = None,
    on_progress: ProgressCallback | None = None,
    weights_path: str | os.PathLike[str] | None = None,
    keep_work_dir: bool = False,
    info: MediaInfo | None = None,
    extending: EarlierRender | None = None,
) -> RenderResult:
    """Render a clip segment by segment with checkpoints, resuming a stopped run; then assemble.

    Running the same call again after a crash, Ctrl-C or ``kill -9`` skips the segments that
    finished and gives the same deliverables as an uninterrupted run. Progress events count
    the frames of segments finished earlier as done (``frames_resumed``), so speed and ETA
    reflect this run.

    Args:
        request, settings, matter: as for :func:`~rvm_render.pipeline.render.render_clip`.
        policy: segment length and preroll.
        mode: ``"sequential"`` or ``"parallel"`` (segments still run one after another here).
        work_dir: default ``OUTDIR/.rvm-work/<stem>``.
        on_progress: events for the whole render.
        weights_path: recorded in the plan for segment tasks (see :func:`prepare_work_dir`).
        keep_work_dir: keep the work dir after assembling (default: removed).
        info: the input, when the caller has probed it already (default: probed here).
        extending: an earlier render whose frames are kept (see :func:`prepare_work_dir`); they
            count as done, as resumed ones do.

    Returns:
        As :func:`render_clip`; the manifest also lists the segments.

    Raises:
        OutputExistsError: the manifest or a deliverable exists and ``settings.overwrite`` is False.
        CheckpointMismatchError: the work dir belongs to another render.
        MediaError, ConfigError, JobError: as the steps raise them.
    """
    started = time.perf_counter()
    info = probe(request.input_path) if info is None else info
    manifest_path = manifest_path_for(request.output_dir, output_stem(request, info))
    if manifest_path.exists() and not settings.overwrite:
        raise OutputExistsError(f"'{manifest_path}' exists; pass --overwrite to replace it")
    work = prepare_work_dir(request, settings, matter, policy, mode=mode, work_dir=work_dir,
                            weights_path=weights_path, info=info, extending=extending)  # fmt: skip
    check_outputs_free(work, overwrite=settings.overwrite)
    segments = work.plan.segments
    frames_total = sum(segment.frames for segment in segments)
    done = set(work.completed_segments())
    frames_resumed = sum(segment.frames for segment in segments if segment.index in done)
    if done:
        log.info("resuming '%s': %d of %d segments (%d of %d frames) already done",
                 info.path, len(done), len(segments), frames_resumed, frames_total)

    def report(frames_done: int) -> None:
        if on_progress is not None:
            elapsed = time.perf_counter() - started
            on_progress(ProgressEvent(info.path, frames_done, frames_total, elapsed, frames_resumed, request.stem))

    frames_done = frames_resumed
    report(frames_done)
    for segment in segments:
        if segment.index in done:
            log.info("segment %d (frames %d-%d) already done; skipped",
                     segment.index, segment.first_frame, segment.last_frame)
            continue
        before = frames_done
        render_segment(work, segment.index, matter,
                       on_progress=lambda event, before=before: report(before + event.frames_done))
        frames_done += segment.frames
    result = assemble_outputs(work, overwrite=settings.overwrite, keep_work_dir=keep_work_dir)
    return dataclasses.replace(result, elapsed_s=time.perf_counter() - started)
