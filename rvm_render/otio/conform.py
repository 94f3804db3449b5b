"""Conform an edit: read the timeline, matte exactly the media it uses, hand it back with matte tracks.

:func:`conform_timeline` reads the story top to bottom: read the timeline, plan the merged media
ranges (:func:`~rvm_render.otio.requests.conform_plan`), refuse under ``strict`` when clips were
skipped, reuse ranges an interrupted conform already finished, render the rest through the same
batch machinery as ``rvm-render matte`` (segments, resume, workers, Ray), and write
``<timeline stem>.rvm.otio`` (plus a copy in the input's own format when a plug-in adapter read
it). ``rvm-render timeline``, the daemon and the editor plug-ins all conform through it.

The written timeline's relative media references are rebased to it
(:mod:`~rvm_render.otio.rebasing`), an ``.otioz`` bundle's media is kept beside it in
``<bundle name>.media/`` (its clips, the mattes' manifests and a re-run all need it), each
movie matte's timecode is where its ``available_range`` puts it, and a still is matted to an
image (PNG when no image format is asked for) that its matte clip holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import filecmp
import logging
import os
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rvm_render import __version__
from rvm_render.engine import Matter
from rvm_render.errors import ConfigError, RvmRenderError, TimelineError
from rvm_render.jobs.batch import BatchInput, BatchPolicy, check_distinct_outputs, render_batch
from rvm_render.jobs.checkpoint import WORK_DIR_NAME
from rvm_render.jobs.earlier_render import EarlierRender
from rvm_render.media.commit import check_writable_folder, writing_to
from rvm_render.media.timecode import timecode_after
from rvm_render.media.writers import OutputFormat, WrittenOutput
from rvm_render.otio.earlier_mattes import MatteRecognizer, edit_without_matte_tracks
from rvm_render.otio.matte_track import RenderedRange, matte_start_frame, timeline_with_matte_tracks
from rvm_render.otio.reading import ReadTimeline, read_timeline, same_format_name, write_timeline
from rvm_render.otio.rebasing import rebased_path, timeline_with_rebased_media
from rvm_render.otio.requests import DEFAULT_HANDLES, ConformPlan, MediaRange, conform_plan
from rvm_render.otio.reuse import EarlierRenders, plan_reusing
from rvm_render.pipeline import RenderRequest, RenderResult, RenderSettings
from rvm_render.pipeline.progress import ProgressCallback, ProgressEvent

log = logging.getLogger(__name__)

__all__ = [
    "ConformOptions",
    "ConformResult",
    "plan_timeline",
    "check_conformable",
    "conform_timeline",
    "conformed_name",
    "MATTE_PREFERENCE",
]

TIMELINE_SUFFIX = ".rvm.otio"
#: The folder of an ``.otioz`` bundle that holds its media (OpenTimelineIO's ``file_bundle_utils.BUNDLE_DIR_NAME``).
BUNDLE_MEDIA_FOLDER = "media"
#: The deliverable matte clips reference, first present wins.
MATTE_PREFERENCE = (OutputFormat.PRORES4444, OutputFormat.ALPHA, OutputFormat.EXR, OutputFormat.PNG)
#: A still's matte is an image its matte clip holds: an image format first, PNG added when none is asked for.
STILL_MATTE_PREFERENCE = (OutputFormat.EXR, OutputFormat.PNG)


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
    extended: int = 0
    """How many of ``rendered`` extend an earlier matte (its frames kept, only the rest rendered)."""
    frames_rendered: int = 0
    """Frames ``rendered`` holds less those kept from the earlier mattes they extend."""


def plan_timeline(
    path: Path, options: ConformOptions, *, bundle_media_dir: Path, kept_media_dir: Path | None = None
) -> tuple[ReadTimeline, ConformPlan]:
    """Read ``path`` and plan its conform (what ``--dry-run`` prints).

    An earlier conform's matte tracks are left out of the returned timeline and its matte clips
    are never matted (:mod:`~rvm_render.otio.earlier_mattes`): the plan lists them apart.

    Args:
        bundle_media_dir: where an ``.otioz`` bundle's media is unpacked.
        kept_media_dir: where an ``.otioz`` bundle's media is then kept (beside the written
            timeline); None: it stays where it was unpacked (a dry run's temp folder).

    Raises:
        TimelineError: the timeline cannot be read, or its kept media differs from the bundle's.
    """
    read = read_timeline(path, bundle_media_dir=bundle_media_dir)
    if read.adapter == "otioz" and kept_media_dir is not None:
        read = dataclasses.replace(read, media_root=_kept_bundle_media(path, bundle_media_dir, kept_media_dir))
    recognizer = MatteRecognizer(read.media_root)
    edit = edit_without_matte_tracks(read.timeline, recognizer)
    plan = conform_plan(edit.timeline, media_root=read.media_root, relink_dirs=options.relink_dirs,
                        handles=options.handles, media_roots=options.media_roots,
                        is_matte=recognizer.is_matte)  # fmt: skip
    plan = dataclasses.replace(plan, earlier_mattes=edit.mattes + plan.earlier_mattes)
    return dataclasses.replace(read, timeline=edit.timeline), plan


def _kept_bundle_media(bundle: Path, unpacked: Path, kept: Path) -> Path:
    """Move an ``.otioz`` bundle's unpacked media (its ``media/`` folder, which its clips reference) into
    ``kept``; files already there (an earlier conform's) must be the same."""
    for source in sorted(p for p in (unpacked / BUNDLE_MEDIA_FOLDER).rglob("*") if p.is_file()):
        target = kept / source.relative_to(unpacked)
        if target.exists():
            if not filecmp.cmp(source, target, shallow=False):
                raise TimelineError(
                    f"'{bundle}': its media '{source.relative_to(unpacked)}' differs from '{target}' kept by an "
                    "earlier conform of a bundle of that name; conform it into another folder (-o)"
                )
            continue
        with writing_to(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
    return kept


def check_conformable(path: Path, plan: ConformPlan, options: ConformOptions) -> None:
    """Refuse, under ``options.strict``, a plan that leaves clips out (the dry run and the real run alike).

    Raises:
        TimelineError: naming the first skipped clips and the fix.
    """
    if options.strict and plan.skipped:
        raise TimelineError(
            f"'{path}': {len(plan.skipped)} video clips would not be matted ({plan.skipped_text()}); fix them "
            "(e.g. --relink DIR) or drop --strict"
        )


def _with_edit_timecode(media_range: MediaRange) -> MediaRange:
    """The range, its media's timecode the one the edit gives its first use, so that each movie matte's
    timecode is where its ``available_range`` in the written timeline puts it (image sequences and
    untagged movies carry none; a reference may place a movie elsewhere)."""
    info = media_range.info
    start_frame = matte_start_frame(media_range.uses[0], media_range)
    origin = "00:00:00;00" if info.timecode is not None and ";" in info.timecode else "00:00:00:00"
    timecode = timecode_after(origin, start_frame - media_range.first_frame, info.rate)
    return dataclasses.replace(media_range, info=dataclasses.replace(info, timecode=timecode))


def _still_settings(settings: RenderSettings) -> RenderSettings:
    """A still's render: the asked formats, plus PNG when none is an image its matte clip can hold."""
    if any(fmt in settings.formats for fmt in STILL_MATTE_PREFERENCE):
        return settings
    return dataclasses.replace(settings, formats=(*settings.formats, OutputFormat.PNG))


def _matte_of(outputs: dict[OutputFormat, Path], *, still: bool) -> tuple[OutputFormat, Path] | None:
    for fmt in STILL_MATTE_PREFERENCE if still else MATTE_PREFERENCE:
        if fmt in outputs:
            return fmt, outputs[fmt]
    return None


def _rendered(media_range: MediaRange, manifest: Path, outputs: dict[OutputFormat, Path]) -> RenderedRange | None:
    matte = _matte_of(outputs, still=media_range.uses[0].still)
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


def _timeline_metadata(plan: ConformPlan, settings: RenderSettings, matter: Matter, options: ConformOptions,
                       relative_to: Path | None) -> dict[str, Any]:  # fmt: skip
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
            {"media": rebased_path(r.media, relative_to), "first_frame": r.first_frame, "last_frame": r.last_frame,
             "stem": r.stem}
            for r in plan.ranges
        ],  # fmt: skip
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
    also resume segment by segment. A clip trimmed past its earlier matte gets one matte of the
    wider range, rendering only the frames the earlier one lacks; the earlier one's files go once
    the timeline is written. An earlier conform's matte tracks in the edit are replaced by
    up-to-date ones. Frames reused count as done in the progress. A range that fails is reported
    through ``on_failure`` and the timeline is not written (an earlier one stays as it was).
    ``on_plan`` gets the plan before anything renders.

    Raises:
        TimelineError: the timeline cannot be read, or ``options.strict`` and clips were skipped.
        ConfigError: no deliverable is a matte to place, or two ranges would write the same files.
        OutputError: the timeline cannot be written.
    """
    _check_matte_format(settings)
    check_writable_folder(output_dir)
    bundle_media = output_dir / WORK_DIR_NAME / f"{path.name}.media"
    read, plan = plan_timeline(path, options, bundle_media_dir=bundle_media,
                               kept_media_dir=output_dir / f"{path.name}.media")  # fmt: skip

    def settings_for(media_range: MediaRange) -> RenderSettings:
        return _still_settings(settings) if media_range.uses[0].still else settings

    earlier = EarlierRenders(output_dir, settings_for, matter)
    reuse = plan_reusing(plan, earlier, reuse=not settings.overwrite)
    plan = reuse.plan
    if on_plan is not None:
        on_plan(plan)
    check_conformable(path, plan, options)
    reused = [_reused(plan_range, reuse.reused[plan_range.stem]) for plan_range in plan.ranges
              if plan_range.stem in reuse.reused]  # fmt: skip
    for made in reused:
        log.info("'%s' was matted by an earlier run of this conform; kept", made.range.stem)
    if on_progress is not None and reuse.reused_frames:
        on_progress(ProgressEvent(path, reuse.reused_frames, reuse.reused_frames, 0.0, reuse.reused_frames))
    to_render: dict[RenderSettings, list[BatchInput]] = defaultdict(list)
    for media_range in map(_with_edit_timecode, reuse.to_render):
        range_settings = settings_for(media_range)
        if earlier.rendered_before(media_range):  # this conform's own earlier files: replaced, never refused
            range_settings = dataclasses.replace(range_settings, overwrite=True)
        extending = reuse.extending.get(media_range.stem)
        to_render[range_settings].append(BatchInput(media_range.request(output_dir), media_range.info, extending))
    check_distinct_outputs([item for items in to_render.values() for item in items])
    by_stem = {r.stem: r for r in plan.ranges}
    failed: list[tuple[MediaRange, str]] = []

    def report(request: RenderRequest, err: RvmRenderError) -> None:
        media_range = by_stem[request.stem]
        failed.append((media_range, str(err)))
        if on_failure is not None:
            on_failure(media_range, err)

    results: list[RenderResult] = []
    for range_settings, inputs in to_render.items():
        results += render_batch(inputs, range_settings, matter, policy, weights_path=weights_path,
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
        timeline_with_rebased_media(read.timeline, read.media_root, relative_to=relative_to), plan, done,
        relative_to=relative_to, metadata=_timeline_metadata(plan, settings, matter, options, relative_to),
    )  # fmt: skip
    timeline_path = write_timeline(timeline, output_dir / conformed_name(path))
    same_name = same_format_name(read, path)
    same_format_path = None if same_name is None else write_timeline(timeline, output_dir / same_name,
                                                                      adapter=read.adapter)  # fmt: skip
    for superseded in reuse.superseded:  # only now: a run that stops earlier leaves them and the old timeline
        superseded.remove()
    extended = [made for made in rendered if made.range.stem in reuse.extending]
    kept = sum(reuse.extending[made.range.stem].frames for made in extended)
    return ConformResult(plan, timeline_path, same_format_path, tuple(rendered), tuple(reused), tuple(failed),
                         len(extended), sum(made.range.frames for made in rendered) - kept)  # fmt: skip


def _reused(media_range: MediaRange, matte: EarlierRender) -> RenderedRange:
    made = _rendered(media_range, matte.manifest, matte.outputs)
    assert made is not None  # reusable mattes have every deliverable asked for, one of them a matte
    return made


def _outputs_by_format(outputs: tuple[WrittenOutput, ...]) -> dict[OutputFormat, Path]:
    return {output.format: Path(output.path) for output in outputs}

