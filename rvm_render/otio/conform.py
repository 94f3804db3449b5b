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
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rvm_render import __version__
from rvm_render.engine import Matter
from rvm_render.errors import RvmRenderError, TimelineError
from rvm_render.jobs.batch import BatchInput, BatchPolicy, check_distinct_outputs, render_batch
from rvm_render.jobs.checkpoint import WORK_DIR_NAME
from rvm_render.media.writers import OutputFormat, WrittenOutput
from rvm_render.otio.matte_track import RenderedRange, timeline_with_matte_tracks
from rvm_render.otio.reading import ReadTimeline, read_timeline, same_format_name, write_timeline
from rvm_render.otio.requests import DEFAULT_HANDLES, ConformPlan, MediaRange, conform_plan
from rvm_render.pipeline import RenderRequest, RenderResult, RenderSettings
from rvm_render.pipeline.manifest import manifest_path_for
from rvm_render.pipeline.progress import ProgressCallback

log = logging.getLogger(__name__)

__all__ = ["ConformOptions", "ConformResult", "plan_timeline", "conform_timeline", "MATTE_PREFERENCE"]

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
    timeline_path: Path
    same_format_path: Path | None
    rendered: tuple[RenderedRange, ...]
    reused: tuple[RenderedRange, ...] = field(default=())
    failed: tuple[tuple[MediaRange, str], ...] = field(default=())


def plan_timeline(path: Path, options: ConformOptions, *, bundle_media_dir: Path) -> tuple[ReadTimeline, ConformPlan]:
    """Read ``path`` and plan its conform (what ``--dry-run`` prints).

    Args:
        bundle_media_dir: where an ``.otioz`` bundle's media is unpacked.

    Raises:
        TimelineError: the timeline cannot be read.
    """
    read = read_timeline(path, bundle_media_dir=bundle_media_dir)
    plan = conform_plan(read.timeline, media_root=read.media_root, relink_dirs=options.relink_dirs,
                        handles=options.handles, media_roots=options.media_roots)  # fmt: skip
    return read, plan


def _matte_of(outputs: dict[OutputFormat, Path]) -> tuple[OutputFormat, Path] | None:
    for fmt in MATTE_PREFERENCE:
        if fmt in outputs:
            return fmt, outputs[fmt]
    return None


def _rendered(media_range: MediaRange, manifest: Path, outputs: dict[OutputFormat, Path]) -> RenderedRange | None:
    matte = _matte_of(outputs)
    return None if matte is None else RenderedRange(media_range, matte[1], matte[0], manifest)


def _finished_earlier(media_range: MediaRange, output_dir: Path, settings: RenderSettings,
                      matter: Matter) -> RenderedRange | None:  # fmt: skip
    """The range as an earlier (interrupted) conform rendered it, if its manifest matches this one exactly."""
    manifest_path = manifest_path_for(output_dir, media_range.stem)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        outputs = {OutputFormat(o["format"]): Path(o["path"]) for o in manifest["outputs"]}
        matches = (
            manifest["input"] == os.path.abspath(media_range.info.path)
            and (manifest["first_frame"], manifest["last_frame"]) == (media_range.first_frame, media_range.last_frame)
            and manifest["weights_sha256"] == matter.weights_sha256
            and manifest["downsample_ratio"] == matter.downsample_ratio_for(media_range.info.height,
                                                                           media_range.info.width)
            and set(settings.formats) <= set(outputs)
            and all(_present(fmt, path, media_range) for fmt, path in outputs.items())
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return _rendered(media_range, manifest_path, outputs) if matches else None


def _present(fmt: OutputFormat, path: Path, media_range: MediaRange) -> bool:
    """Whether a listed output is on disk (a sequence: its first and last frame)."""
    if not fmt.is_sequence:
        return path.is_file()
    return all((path.parent / (path.name % number)).is_file() for number in (media_range.first_frame,
                                                                              media_range.last_frame))  # fmt: skip


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

    Ranges a previous run of the same conform finished (their manifest matches) are reused, so an
    interrupted conform resumes where it stopped; long ranges also resume segment by segment.
    A range that fails is reported through ``on_failure``; the timeline is still written with
    the mattes that could be made. ``on_plan`` gets the plan before anything renders.

    Raises:
        TimelineError: the timeline cannot be read, or ``options.strict`` and clips were skipped.
        ConfigError: two ranges would write the same files.
        OutputError: the timeline cannot be written.
    """
    bundle_media = output_dir / WORK_DIR_NAME / f"{path.name}.media"
    read, plan = plan_timeline(path, options, bundle_media_dir=bundle_media)
    if on_plan is not None:
        on_plan(plan)
    if options.strict and plan.skipped:
        raise TimelineError(
            f"'{path}': {len(plan.skipped)} video clips would not be matted ({plan.skipped_text()}); fix them "
            "(e.g. --relink DIR) or drop --strict"
        )
    reused: list[RenderedRange] = []
    to_render: list[BatchInput] = []
    for media_range in plan.ranges:
        earlier = None if settings.overwrite else _finished_earlier(media_range, output_dir, settings, matter)
        if earlier is not None:
            log.info("'%s' was matted by an earlier run of this conform; kept", media_range.stem)
            reused.append(earlier)
        else:
            to_render.append(BatchInput(media_range.request(output_dir), media_range.info))
    check_distinct_outputs(to_render)
    by_stem = {r.stem: r for r in plan.ranges}
    failed: list[tuple[MediaRange, str]] = []

    def report(request: RenderRequest, err: RvmRenderError) -> None:
        media_range = by_stem[request.stem]
        failed.append((media_range, str(err)))
        if on_failure is not None:
            on_failure(media_range, err)

    results: list[RenderResult] = render_batch(
        to_render, settings, matter, policy, weights_path=weights_path, on_failure=report, on_progress=on_progress
    )
    rendered = []
    for result in results:
        media_range = by_stem[result.manifest_path.name.removesuffix(".rvm.json")]
        made = _rendered(media_range, result.manifest_path, _outputs_by_format(result.outputs))
        if made is not None:
            rendered.append(made)
    done = {r.range.stem: r for r in (*reused, *rendered)}
    relative_to = output_dir if options.relative_paths else None
    timeline = timeline_with_matte_tracks(
        read.timeline, plan, done, relative_to=relative_to, metadata=_timeline_metadata(plan, settings, matter, options)
    )
    timeline_path = write_timeline(timeline, output_dir / f"{path.stem}{TIMELINE_SUFFIX}")
    same_name = same_format_name(read, path)
    same_format_path = None if same_name is None else write_timeline(timeline, output_dir / same_name,
                                                                      adapter=read.adapter)  # fmt: skip
    if bundle_media.exists():  # an .otioz bundle's unpacked media: only needed while rendering
        shutil.rmtree(bundle_media, ignore_errors=True)
        with contextlib.suppress(OSError):
            bundle_media.parent.rmdir()
    return ConformResult(plan, timeline_path, same_format_path, tuple(rendered), tuple(reused), tuple(failed))


def _outputs_by_format(outputs: tuple[WrittenOutput, ...]) -> dict[OutputFormat, Path]:
    return {output.format: Path(output.path) for output in outputs}

