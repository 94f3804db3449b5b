"""A batch of clips rendered the way ``rvm-render matte`` renders them.

Every input is probed once, up front; inputs that would write the same files are refused before
anything renders; then each clip is rendered in one pass (:func:`~rvm_render.pipeline.render_clip`)
or, when it is long, asked to, or resuming, in checkpointed segments
(:func:`~rvm_render.jobs.runner.render_segmented`), or all of them are planned and their segments
spread over local workers or Ray actors, then assembled. A clip that fails is reported through
``on_failure`` and the others go on. ``rvm-render matte`` and ``rvm-render timeline`` (and the
daemon) all render through :func:`render_batch`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rvm_render.engine import Matter
from rvm_render.errors import ConfigError, JobError, MediaError, OutputError, OutputExistsError, RvmRenderError
from rvm_render.jobs.assemble import assemble_outputs, check_outputs_free
from rvm_render.jobs.checkpoint import WorkDir
from rvm_render.jobs.earlier_render import EarlierRender
from rvm_render.jobs.ray_executor import run_segments_on_ray
from rvm_render.jobs.runner import prepare_work_dir, render_segmented, work_dir_for
from rvm_render.jobs.scheduler import MatterSpec, local_worker_slots, run_segments_locally
from rvm_render.jobs.segments import DEFAULT_SEGMENT_FRAMES, PREROLL_FRAMES, PlanMode, SegmentPolicy
from rvm_render.media.commit import output_error
from rvm_render.media.probe import MediaInfo, probe
from rvm_render.media.writers import WrittenOutput
from rvm_render.pipeline import RenderRequest, RenderResult, RenderSettings, render_clip
from rvm_render.pipeline.manifest import manifest_path_for
from rvm_render.pipeline.progress import ProgressCallback
from rvm_render.pipeline.render import frame_range, output_stem

log = logging.getLogger(__name__)

__all__ = [
    "BatchPolicy",
    "BatchInput",
    "FailureCallback",
    "probe_inputs",
    "check_distinct_outputs",
    "kept_if_current",
    "render_batch",
]

#: Errors that belong to one input: it is reported and the batch goes on.
INPUT_ERRORS = (MediaError, OutputExistsError, OutputError, ConfigError, JobError)

FailureCallback = Callable[[RenderRequest, RvmRenderError], None]


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How a batch is cut into segments and where they run (the ``matte`` flags of the same names).

    Args:
        segment_frames: most frames per segment; None: segment only clips longer than
            :data:`~rvm_render.jobs.segments.DEFAULT_SEGMENT_FRAMES` (or resuming a work dir);
            0: one pass, no checkpoints.
        work_dir: the work dir of a single input (default ``OUTDIR/.rvm-work/<stem>``).
        work_root: the folder every input's work dir goes in, named by its stem (instead of
            ``OUTDIR/.rvm-work``; the daemon keeps them under its state dir).
        mode: ``sequential`` or ``parallel``; None: sequential here, parallel on workers.
        preroll_frames: parallel mode's warm-up frames before each segment.
        keep_work_dir: keep work dirs after assembly.
        workers: worker processes (or Ray actors); None with ``executor="local"``: no workers.
        executor: ``local`` processes or ``ray`` actors.
        address: the Ray cluster (default: a local Ray instance).

    Raises:
        ConfigError: contradictory settings, naming the flags.
    """

    segment_frames: int | None = None
    work_dir: Path | None = None
    work_root: Path | None = None
    mode: PlanMode | None = None
    preroll_frames: int = PREROLL_FRAMES
    keep_work_dir: bool = False
    workers: int | None = None
    executor: Literal["local", "ray"] = "local"
    address: str | None = None

    def __post_init__(self) -> None:
        if self.distributed and self.segment_frames == 0:
            raise ConfigError("--segment-frames 0 renders in one pass on one device; drop --workers/--executor")
        if self.segment_frames == 0 and (self.work_dir is not None or self.mode is not None):
            raise ConfigError("--segment-frames 0 renders in one pass; drop --work-dir and --mode, or segment")
        if self.work_dir is not None and self.work_root is not None:
            raise ConfigError("work_dir and work_root: name one clip's work dir or the folder of all, not both")

    @property
    def distributed(self) -> bool:
        """Whether segments go to worker processes or Ray actors."""
        return self.workers is not None or self.executor == "ray"

    @property
    def segments(self) -> SegmentPolicy:
        """Segment length and pre-roll."""
        max_frames = self.segment_frames or DEFAULT_SEGMENT_FRAMES
        return SegmentPolicy(max_frames=max_frames, preroll_frames=self.preroll_frames)

    def work_dir_of(self, request: RenderRequest, info: MediaInfo) -> Path | None:
        """The work dir a clip's segments use: ``work_dir``, ``work_root/<stem>``, or None (the default)."""
        if self.work_root is not None:
            return self.work_root / output_stem(request, info)
        return self.work_dir

    def segmented(self, item: BatchInput) -> bool:
        """Whether to render in segments: asked for, longer than one segment, resuming one, or extending
        an earlier render (its frames are a segment; even with ``segment_frames=0``)."""
        request, info = item.request, item.info
        if item.extending is not None:
            return True
        if self.segment_frames == 0:
            return False
        if self.segment_frames is not None or self.work_dir is not None or self.mode is not None:
            return True
        first, last = frame_range(request, info)
        resuming = work_dir_for(request, info, self.work_dir_of(request, info)).exists()
        return last - first + 1 > DEFAULT_SEGMENT_FRAMES or resuming


@dataclass(frozen=True, slots=True)
class BatchInput:
    """One clip of a batch, probed."""

    request: RenderRequest
    info: MediaInfo
    extending: EarlierRender | None = None
    """An earlier render whose frames are kept: only the rest is rendered (:mod:`~rvm_render.jobs.extension`)."""


def probe_inputs(requests: list[RenderRequest], on_failure: FailureCallback) -> list[BatchInput]:
    """Probe every request's input once; an unreadable one goes to ``on_failure`` and is left out."""
    inputs: list[BatchInput] = []
    for request in requests:
        try:
            inputs.append(BatchInput(request, probe(request.input_path)))
        except MediaError as err:
            on_failure(request, err)
    return inputs


def check_distinct_outputs(inputs: list[BatchInput]) -> None:
    """Refuse a batch in which two inputs would write the same files (same stem in the same folder).

    Stems are compared without case: they clash on macOS and Windows file systems and shares.

    Raises:
        ConfigError: naming both inputs and how to resolve it.
    """
    seen: dict[tuple[str, str], Path] = {}
    for item in inputs:
        stem = output_stem(item.request, item.info)
        output_dir = item.request.output_dir
        key = (os.path.abspath(output_dir), stem.casefold())
        other = seen.get(key)
        if other is not None:
            raise ConfigError(
                f"inputs '{other}' and '{item.request.input_path}' would both write '{output_dir / stem}_*' and "
                f"'{stem}.rvm.json'; matte them into different output folders (-o) in separate runs, or rename one"
            )
        seen[key] = item.request.input_path


def render_batch(
    inputs: list[BatchInput],
    settings: RenderSettings,
    matter: Matter,
    policy: BatchPolicy,
    *,
    weights_path: Path,
    on_failure: FailureCallback,
    on_progress: ProgressCallback | None = None,
) -> list[RenderResult]:
    """Render every input as ``policy`` says; return the results of those that succeeded.

    Args:
        inputs: from :func:`probe_inputs`, checked by :func:`check_distinct_outputs`.
        settings: deliverables and batching, shared by every clip.
        matter: the engine (workers open their own from ``weights_path`` and its options).
        weights_path: the weights file or folder, recorded in plans for segment tasks.
        on_failure: called with each input that fails (its error is one line) as it fails.
        on_progress: progress of each clip (one pass, segmented) or of the whole batch (workers).

    Raises:
        ConfigError: ``policy.work_dir`` given for more than one input.
        KeyboardInterrupt: interrupted; unfinished outputs were removed, finished segments kept.
    """
    if policy.work_dir is not None and len(inputs) > 1:
        raise ConfigError("--work-dir: names the work dir of one clip; pass one INPUT with it")
    if policy.distributed:
        return _render_distributed(inputs, settings, matter, policy, weights_path, on_failure, on_progress)
    results = []
    for item in inputs:
        try:
            results.append(kept_if_current(item, settings, matter)
                           or _render_one(item, settings, matter, policy, weights_path, on_progress))  # fmt: skip
        except INPUT_ERRORS as err:
            on_failure(item.request, err)
        except OSError as err:  # an output failure no layer below named: still one line, and the batch goes on
            on_failure(item.request, output_error(err.filename or item.request.output_dir, err))
    return results


def kept_if_current(item: BatchInput, settings: RenderSettings, matter: Matter) -> RenderResult | None:
    """The input's earlier render at its output names when it still serves this run, else None (render it).

    A command run again does only what is new: an earlier render of the same frames of the same
    input (fingerprint), with the same weights, ratio, warm start and comp backdrop, holding every
    deliverable asked for and whole, is kept as it is (:meth:`EarlierRender.stale_because`).
    ``settings.overwrite`` renders again whatever is there.

    Raises:
        OutputExistsError: a render is there that does not serve this run, naming why and the fix.
    """
    info = item.info
    manifest = manifest_path_for(item.request.output_dir, output_stem(item.request, info))
    if settings.overwrite or not manifest.exists():
        return None
    first, last = frame_range(item.request, info)
    ratio = matter.downsample_ratio_for(info.height, info.width)
    earlier = EarlierRender.read(manifest)
    why = "it is not a manifest this version reads" if earlier is None else earlier.stale_because(
        info, formats=settings.formats, weights_sha256=str(matter.weights_sha256), downsample_ratio=ratio,
        variant=matter.variant, frames=(first, last), look=settings.look)  # fmt: skip
    if why is not None or earlier is None:
        raise OutputExistsError(f"'{manifest}' is an earlier render that does not serve this run ({why}); "
                                "pass --overwrite to replace it")  # fmt: skip
    log.info("'%s' is up to date (same input, weights and settings; every frame there); kept", manifest)
    outputs = tuple(WrittenOutput(fmt, path, first, last) for fmt, path in earlier.outputs.items()
                    if fmt in settings.formats)  # fmt: skip
    return RenderResult(info, manifest, outputs, last - first + 1, ratio, kept=True)


def _render_one(
    item: BatchInput,
    settings: RenderSettings,
    matter: Matter,
    policy: BatchPolicy,
    weights_path: Path,
    on_progress: ProgressCallback | None,
) -> RenderResult:
    if not policy.segmented(item):
        return render_clip(item.request, settings, matter, on_progress=on_progress, info=item.info)
    return render_segmented(
        item.request,
        settings,
        matter,
        policy.segments,
        mode=policy.mode or "sequential",
        work_dir=policy.work_dir_of(item.request, item.info),
        on_progress=on_progress,
        weights_path=weights_path,
        keep_work_dir=policy.keep_work_dir,
        info=item.info,
        extending=item.extending,
    )


def _render_distributed(
    inputs: list[BatchInput],
    settings: RenderSettings,
    matter: Matter,
    policy: BatchPolicy,
    weights_path: Path,
    on_failure: FailureCallback,
    on_progress: ProgressCallback | None,
) -> list[RenderResult]:
    """Plan every input, render all their segments on the workers, then assemble each.

    A clip's ``elapsed_s`` runs from the start of the batch to its assembly (its segments share the
    workers with the other clips'), so its fps is what the batch delivered, not assembly alone.
    """
    started = time.perf_counter()
    planned: list[WorkDir] = []
    kept: list[RenderResult] = []
    for item in inputs:
        try:
            earlier = kept_if_current(item, settings, matter)
            if earlier is not None:
                kept.append(earlier)
                continue
            work = prepare_work_dir(
                item.request,
                settings,
                matter,
                policy.segments,
                mode=policy.mode or "parallel",
                work_dir=policy.work_dir_of(item.request, item.info),
                weights_path=weights_path,
                info=item.info,
                extending=item.extending,
            )
            check_outputs_free(work, overwrite=settings.overwrite)
        except INPUT_ERRORS as err:
            on_failure(item.request, err)
            continue
        planned.append(work)
    if not planned:
        return kept
    spec = MatterSpec.resolved(weights_path, matter.options, variant=matter.variant)
    if policy.executor == "ray":
        run_segments_on_ray(planned, spec, address=policy.address, workers=policy.workers, on_progress=on_progress)
    else:
        slots = local_worker_slots(policy.workers, matter.options.device)
        run_segments_locally(planned, spec, slots=slots, on_progress=on_progress)
    keep = policy.keep_work_dir
    assembled = []
    for work in planned:
        result = assemble_outputs(work, overwrite=settings.overwrite, keep_work_dir=keep)
        assembled.append(dataclasses.replace(result, elapsed_s=time.perf_counter() - started))
    return kept + assembled
