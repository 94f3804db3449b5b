"""Conform an edit: read the timeline, matte exactly the media it uses, hand it back with matte tracks.

:func:`conform_timeline` reads the story top to bottom: read the timeline, plan the merged media
ranges (:func:`~rvm_render.otio.requests.conform_plan`), refuse under ``strict`` when clips were
skipped, reuse ranges an interrupted conform already finished, render the rest through the same
batch machinery as ``rvm-render matte`` (segments, resume, workers, Ray), and write
``<timeline stem>.rvm.otio`` (plus a copy in the input's own format when a plug-in adapter read
it). ``rvm-render timeline``, the daemon and the editor plug-ins all conform through it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rvm_render import __version__
from rvm_render.engine import Matter
from rvm_render.errors import ConfigError, RvmRenderError, TimelineError
from rvm_render.jobs.batch import BatchInput, BatchPolicy, check_distinct_outputs, render_batch
from rvm_render.jobs.checkpoint import WORK_DIR_NAME
from rvm_render.media.writers import OutputFormat, WrittenOutput
from rvm_render.otio.earlier_mattes import MatteRecognizer, edit_without_matte_tracks
from rvm_render.otio.matte_track import RenderedRange, timeline_with_matte_tracks
from rvm_render.otio.reading import ReadTimeline, read_timeline, same_format_name, write_timeline
from rvm_render.otio.requests import DEFAULT_HANDLES, ConformPlan, MediaRange, conform_plan
from rvm_render.otio.reuse import EarlierMatte, EarlierRenders, plan_reusing
from rvm_render.pipeline import RenderRequest, RenderResult, RenderSettings
from rvm_render.pipeline.progress import ProgressCallback, ProgressEvent

log = logging.getLogger(__name__)

__all__ = ["ConformOptions", "ConformResult", "plan_timeline", "conform_timeline", "conformed_name", "MATTE_PREFERENCE"]

TIMELINE_SUFFIX = ".rvm.otio"
#: The deliverable matte clips reference, first present wins.
MATTE_PREFERENCE = (OutputFormat.PRORES4444, OutputFormat.ALPHA, OutputFormat.EXR, OutputFormat.PNG)


@dataclass(frozen=True, slots=True)
class ConformOptions:
    """What ``rvm-render timeline`` adds to the render options.

    Args:
        handles: frames added on each side of what each clip shows.
        relink_dirs: folders to find missing media in by file name.
        strict: a skipped clip fails the conform (before anything renders).
        relative_paths: matte references relative to the written timeline (default: absolute).
        media_roots: when given, media outside these folders is not matted (the daemon's rule).
    """

    handles: int = DEFAULT_HANDLES
    relink_dirs: tuple[Path, ...] = ()
    strict: bool = False
    relative_paths: bool = False
    media_roots: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class ConformResult:
    """What a conform made."""

    plan: ConformPlan
    timeline_path: Path | None
    """None when a range failed: the timeline is written only when all its mattes exist."""
    same_format_path: Path | None
    rendered: tuple[RenderedRange, ...]
    reused: tuple[RenderedRange, ...] = field(default=())
    failed: tuple[tuple[MediaRange, str], ...] = field(default=())


def plan_timeline(path: Path, options: ConformOptions, *, bundle_media_dir: Path) -> tuple[ReadTimeline, ConformPlan]:
    """Read ``path`` and plan its conform (what ``--dry-run`` prints).

    An earlier conform's matte tracks are left out of the returned timeline and its matte clips
    are never matted (:mod:`~rvm_render.otio.earlier_mattes`): the plan lists them apart.

    Args:
        bundle_media_dir: where an ``.otioz`` bundle's media is unpacked.

    Raises:
        TimelineError: the timeline cannot be read.
    """
    read = read_timeline(path, bundle_media_dir=bundle_media_dir)
    recognizer = MatteRecognizer(read.media_root)
    edit = edit_without_matte_tracks(read.timeline, recognizer)
    plan = conform_plan(edit.timeline, media_root=read.media_root, relink_dirs=options.relink_dirs,
                        handles=options.handles, media_roots=options.media_roots,
                        is_matte=recognizer.is_matte)  # fmt: skip
    plan = dataclasses.replace(plan, earlier_mattes=edit.mattes + plan.earlier_mattes)
    return dataclasses.replace(read, timeline=edit.timeline), plan


def _matte_of(outputs: dict[OutputFormat, Path]) -> tuple[OutputFormat, Path] | None:
    for fmt in MATTE_PREFERENCE:
        if fmt in outputs:
            return fmt, outputs[fmt]
    return None


def _rendered(media_range: MediaRange, manifest: Path, outputs: dict[OutputFormat, Path]) -> RenderedRange | None:
    matte = _matte_of(outputs)
    return None if matte is None else RenderedRange(media_range, matte[1], matte[0], manifest)


def conformed_name(path: Path) -> str:
    """``<stem>.rvm.otio``; a conform's own ``.rvm.otio`` keeps its name (conformed again, it is updated)."""
    return path.name if path.name.endswith(TIMELINE_SUFFIX) else f"{path.stem}{TIMELINE_SUFFIX}"


def _check_matte_format(settings: RenderSettings) -> None:
    if not set(settings.formats) & set(MATTE_PREFERENCE):
        asked = ",".join(fmt.value for fmt in settings.formats)
        raise ConfigError(
            f"formats {asked}: a matte track needs a matte to place (none of "
            f"{', '.join(fmt.value for fmt in MATTE_PREFERENCE)}); add one, e.g. prores4444,{asked}"
        )


def _timeline_metadata(plan: ConformPlan, settings: RenderSettings, matter: Matter,
                       options: ConformOptions) -> dict[str, Any]:  # fmt: skip
    return {
        "version": __version__,
        "settings": {
            "formats": [fmt.value for fmt in settings.formats],
            "downsample_ratio": matter.options.downsample_ratio,
            "handles": options.handles,
            "weights_sha256": matter.weights_sha256,
            "variant": matter.variant,
        },
        "ranges": [
            {"media": str(r.media), "first_frame": r.first_frame, "last_frame": r.last_frame, "stem": r.stem}
            for r in plan.ranges
        ],
        "skipped": [{"clip": s.place.label(), "name": s.name, "reason": s.reason} for s in plan.skipped],
    }


def conform_timeline(
    path: Path,
    output_dir: Path,
    settings: RenderSettings,
    matter: Matter,
    policy: BatchPolicy,
    options: ConformOptions,
    *,
    weights_path: Path,
    on_progress: ProgressCallback | None = None,
    on_failure: Callable[[MediaRange, RvmRenderError], None] | None = None,
    on_plan: Callable[[ConformPlan], None] | None = None,
) -> ConformResult:
    """Matte every media range ``path``'s edit uses and write ``OUTDIR/<stem>.rvm.otio`` (module doc).

    Clips an earlier run's mattes still serve are placed on them (:mod:`~rvm_render.otio.reuse`),
    so a conform run again renders only what changed, and an interrupted one resumes; long ranges
    also resume segment by segment. An earlier conform's matte tracks in the edit are replaced by
    up-to-date ones. Frames reused count as done in the progress. A range that fails is reported
    through ``on_failure`` and the timeline is not written (an earlier one stays as it was).
    ``on_plan`` gets the plan before anything renders.

    Raises:
        TimelineError: the timeline cannot be read, or ``options.strict`` and clips were skipped.
        ConfigError: no deliverable is a matte to place, or two ranges would write the same files.
        OutputError: the timeline cannot be written.
    """
    _check_matte_format(settings)
    bundle_media = output_dir / WORK_DIR_NAME / f"{path.name}.media"
    read, plan = plan_timeline(path, options, bundle_media_dir=bundle_media)
    if options.strict and plan.skipped:
        listed = "; ".join(s.line() for s in plan.skipped[:3]) + ("; ..." if len(plan.skipped) > 3 else "")
        raise TimelineError(
            f"'{path}': {len(plan.skipped)} video clips would not be matted ({listed}); fix them (e.g. --relink DIR) "
            "or drop --strict"
        )
    earlier = EarlierRenders(output_dir, settings, matter)
    reuse = plan_reusing(plan, earlier, reuse=not settings.overwrite)
    plan = reuse.plan
    if on_plan is not None:
        on_plan(plan)
    reused = [_reused(plan_range, reuse.reused[plan_range.stem]) for plan_range in plan.ranges
              if plan_range.stem in reuse.reused]  # fmt: skip
    for made in reused:
        log.info("'%s' was matted by an earlier run of this conform; kept", made.range.stem)
    if on_progress is not None and reuse.reused_frames:
        on_progress(ProgressEvent(path, reuse.reused_frames, reuse.reused_frames, 0.0, reuse.reused_frames))
    to_render = [BatchInput(media_range.request(output_dir), media_range.info) for media_range in reuse.to_render]
    check_distinct_outputs(to_render)
    by_stem = {r.stem: r for r in plan.ranges}
    failed: list[tuple[MediaRange, str]] = []

    def report(request: RenderRequest, err: RvmRenderError) -> None:
        media_range = by_stem[request.stem]
        failed.append((media_range, str(err)))
        if on_failure is not None:
            on_failure(media_range, err)

    replacing = [item for item in to_render if earlier.rendered_before(by_stem[item.request.stem])]
    results: list[RenderResult] = []
    for batch, batch_settings in ((replacing, dataclasses.replace(settings, overwrite=True)),
                                  ([item for item in to_render if item not in replacing], settings)):  # fmt: skip
        if batch:
            results += render_batch(batch, batch_settings, matter, policy, weights_path=weights_path,
                                    on_failure=report, on_progress=on_progress)  # fmt: skip
    rendered = []
    for result in results:
        media_range = by_stem[result.manifest_path.name.removesuffix(".rvm.json")]
        made = _rendered(media_range, result.manifest_path, _outputs_by_format(result.outputs))
        if made is not None:
            rendered.append(made)
    if bundle_media.exists():  # an .otioz bundle's unpacked media: only needed while rendering
        shutil.rmtree(bundle_media, ignore_errors=True)
        with contextlib.suppress(OSError):
            bundle_media.parent.rmdir()
    if failed:
        log.error("'%s': %d of %d media ranges failed; the timeline was not written", path, len(failed),
                  len(plan.ranges))  # fmt: skip
        return ConformResult(plan, None, None, tuple(rendered), tuple(reused), tuple(failed))
    done = {r.range.stem: r for r in (*reused, *rendered)}
    relative_to = output_dir if options.relative_paths else None
    timeline = timeline_with_matte_tracks(
        read.timeline, plan, done, relative_to=relative_to, metadata=_timeline_metadata(plan, settings, matter, options)
    )
    timeline_path = write_timeline(timeline, output_dir / conformed_name(path))
    same_name = same_format_name(read, path)
    same_format_path = None if same_name is None else write_timeline(timeline, output_dir / same_name,
                                                                      adapter=read.adapter)  # fmt: skip
    return ConformResult(plan, timeline_path, same_format_path, tuple(rendered), tuple(reused), tuple(failed))


def _reused(media_range: MediaRange, matte: EarlierMatte) -> RenderedRange:
    made = _rendered(media_range, matte.manifest, matte.outputs)
    assert made is not None  # reusable mattes have every deliverable asked for, one of them a matte
    return made


def _outputs_by_format(outputs: tuple[WrittenOutput, ...]) -> dict[OutputFormat, Path]:
    return {output.format: Path(output.path) for output in outputs}

