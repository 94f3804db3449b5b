"""The deliverables of a segmented render, from its finished segments, frame-accurately.

For every deliverable of the plan (:class:`~rvm_render.jobs.checkpoint.RenderSpec`):

- movies (``prores4444``, ``alpha``, ``comp``): the segments' parts are joined by remuxing
  their packets into one file with continuous timestamps, the source audio copied whole and
  the timecode kept (:func:`~rvm_render.media.writers.concat.concat_movie_parts`; parts whose
  codec parameters differ are encoded again);
- sequences (``exr``, ``png``): the frame files, already numbered by their final frame numbers,
  are linked into place (:func:`~rvm_render.media.commit.link_sequence_into_place`).

Each appears under a temporary name and is renamed when complete; the manifest
``<stem>.rvm.json`` comes last, as in a single pass, and lists the segments. Then the work dir
is removed. ``assembled.json`` in the work dir records each deliverable once it is in place,
so an assembly stopped half-way can be run again without tripping over its own outputs.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from rvm_render.errors import JobError, MediaError
from rvm_render.jobs.checkpoint import CompletedSegment, RenderSpec, WorkDir
from rvm_render.media.commit import (
    ensure_absent,
    ensure_sequence_absent,
    link_sequence_into_place,
    write_bytes_atomically,
    writing_to,
)
from rvm_render.media.probe import MediaInfo
from rvm_render.media.writers import OutputFormat, WrittenOutput, output_path
from rvm_render.media.writers.concat import MoviePart, concat_movie_parts
from rvm_render.pipeline.manifest import Manifest, commit_manifest, look_of, manifest_path_for
from rvm_render.pipeline.render import RenderResult

log = logging.getLogger(__name__)

__all__ = ["ASSEMBLY_LOG", "assemble_outputs", "check_outputs_free"]

ASSEMBLY_LOG = "assembled.json"


def _spec_of(work: WorkDir) -> RenderSpec:
    if work.plan.spec is None:
        raise JobError(f"work dir '{work.path}' has no render settings in plan.json; nothing to assemble")
    return work.plan.spec


def _final_path(spec: RenderSpec, fmt: OutputFormat) -> Path:
    return output_path(fmt, Path(spec.output_dir), spec.stem)


def _frame_file(pattern: Path, number: int) -> Path:
    return pattern.with_name(pattern.name % number)


def _identity(path: Path) -> list[int] | None:
    """(size, mtime) of a file, to recognise a deliverable this assembly put in place."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _placed_files(fmt: OutputFormat, final: Path, first_number: int, last_number: int) -> list[Path]:
    if fmt.is_sequence:
        return [_frame_file(final, first_number), _frame_file(final, last_number)]
    return [final]


class _AssemblyLog:
    """``assembled.json``: deliverables already in place, with the identity of their files."""

    def __init__(self, work: WorkDir) -> None:
        self.path = work.path / ASSEMBLY_LOG
        try:
            self.entries: dict[str, Any] = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            self.entries = {}

    def placed(self, fmt: OutputFormat, files: list[Path]) -> bool:
        """Whether ``fmt`` was put in place by this assembly and is still untouched."""
        recorded = self.entries.get(fmt.value)
        return recorded is not None and recorded == [[str(f), _identity(f)] for f in files]

    def record(self, fmt: OutputFormat, files: list[Path]) -> None:
        self.entries[fmt.value] = [[str(f), _identity(f)] for f in files]
        write_bytes_atomically(self.path, (json.dumps(self.entries, indent=2) + "\n").encode())


def check_outputs_free(work: WorkDir, *, overwrite: bool) -> None:
    """Refuse to start when a deliverable or the manifest exists (unless this assembly placed it).

    Raises:
        OutputExistsError: something is in the way and ``overwrite`` is False.
    """
    if overwrite:
        return
    spec = _spec_of(work)
    placed = _AssemblyLog(work)
    ensure_absent(manifest_path_for(Path(spec.output_dir), spec.stem), overwrite=False)
    for name in spec.formats:
        fmt = OutputFormat(name)
        if fmt.value in placed.entries:
            continue  # checked when assembling: reused if untouched
        if fmt.is_sequence:
            ensure_sequence_absent(_final_path(spec, fmt), overwrite=False)
        else:
            ensure_absent(_final_path(spec, fmt), overwrite=False)


def _segment_outputs(work: WorkDir, record: CompletedSegment, fmt: OutputFormat) -> dict[str, Any]:
    for output in record.outputs or ():
        if output.get("format") == fmt.value:
            return dict(output)
    raise JobError(
        f"segment {record.index} of '{work.path}' recorded no {fmt.value} output; "
        f"delete '{work.done_path(record.index)}' and render it again"
    )


def _assembled_sequence(
    work: WorkDir,
    records: list[CompletedSegment],
    fmt: OutputFormat,
    info: MediaInfo,
    spec: RenderSpec,
    overwrite: bool,
) -> WrittenOutput:
    final = _final_path(spec, fmt)
    files: dict[int, Path] = {}
    for record in records:
        pattern = work.path / _segment_outputs(work, record, fmt)["path"]
        for frame_index in range(record.first_frame, record.last_frame + 1):
            number = info.first_frame_number + frame_index
            source = _frame_file(pattern, number)
            if not source.is_file():
                raise MediaError(
                    f"frame file '{source}' of segment {record.index} is missing; delete "
                    f"'{work.done_path(record.index)}' and render the segment again"
                )
            files[number] = source
    link_sequence_into_place(files, final, overwrite=overwrite)
    log.info("placed %s (%d frames)", final, len(files))
    return WrittenOutput(fmt, final, spec.first_frame, spec.last_frame)


def _assembled_movie(
    work: WorkDir,
    records: list[CompletedSegment],
    fmt: OutputFormat,
    info: MediaInfo,
    spec: RenderSpec,
    overwrite: bool,
) -> WrittenOutput:
    parts = [
        MoviePart(work.path / _segment_outputs(work, record, fmt)["path"], record.first_frame, record.last_frame)
        for record in records
    ]
    return concat_movie_parts(
        fmt, parts, _final_path(spec, fmt), info, overwrite=overwrite, background=spec.background
    )


def assemble_outputs(
    work_dir: WorkDir | str | os.PathLike[str],
    *,
    overwrite: bool = False,
    keep_work_dir: bool = False,
) -> RenderResult:
    """Produce the final deliverables and manifest of a work dir whose segments are all done.

    Args:
        work_dir: a :class:`WorkDir` or its path.
        overwrite: replace existing deliverables and manifest instead of raising.
        keep_work_dir: keep the work dir afterwards (default: removed once the manifest is written).

    Returns:
        What was produced (``elapsed_s``: time spent assembling).

    Raises:
        JobError: segments are not done yet, or a segment's record is unusable.
        CheckpointMismatchError: the input changed since planning.
        OutputExistsError: a deliverable or the manifest exists and ``overwrite`` is False.
        MediaError: a segment's files are missing or hold the wrong frames.
    """
    started = time.perf_counter()
    work = work_dir if isinstance(work_dir, WorkDir) else WorkDir.load(work_dir)
    spec = _spec_of(work)
    pending = work.pending_segments()
    if pending:
        listed = ", ".join(str(index) for index in pending[:10]) + (", ..." if len(pending) > 10 else "")
        raise JobError(
            f"cannot assemble '{work.path}': segments {listed} not done; run them first "
            f"(rvm-render segment {work.path} --index K, or rerun rvm-render matte)"
        )
    work.check_input()
    info = spec.input_info()
    records = [work.completed(segment.index) for segment in work.plan.segments]
    assert all(record is not None for record in records)
    finished: list[CompletedSegment] = [record for record in records if record is not None]
    output_dir = Path(spec.output_dir)
    with writing_to(output_dir):
        output_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = manifest_path_for(output_dir, spec.stem)
    check_outputs_free(work, overwrite=overwrite)

    placed = _AssemblyLog(work)
    first_number = info.first_frame_number + spec.first_frame
    last_number = info.first_frame_number + spec.last_frame
    outputs: list[WrittenOutput] = []
    for name in spec.formats:
        fmt = OutputFormat(name)
        final = _final_path(spec, fmt)
        files = _placed_files(fmt, final, first_number, last_number)
        if placed.placed(fmt, files):
            log.info("%s already assembled; kept", final)
            outputs.append(WrittenOutput(fmt, final, spec.first_frame, spec.last_frame))
            continue
        assemble = _assembled_sequence if fmt.is_sequence else _assembled_movie
        outputs.append(assemble(work, finished, fmt, info, spec, overwrite))
        placed.record(fmt, files)

    manifest = Manifest(
        info=info,
        first_frame=spec.first_frame,
        last_frame=spec.last_frame,
        variant=spec.variant or "",
        weights_sha256=spec.weights_sha256,
        downsample_ratio=spec.downsample_ratio,
        outputs=tuple(outputs),
        segments=tuple((s.first_frame, s.last_frame) for s in work.plan.segments),
        input_fingerprint=work.plan.fingerprint.input,
        look=look_of([OutputFormat(name) for name in spec.formats], spec.background, spec.warmup_frames),
    )
    commit_manifest(manifest, manifest_path, overwrite=overwrite)
    elapsed = time.perf_counter() - started
    log.info("assembled '%s' from %d segments in %.1f s", info.path, len(finished), elapsed)
    if not keep_work_dir:
        work.remove()
    frames = spec.last_frame - spec.first_frame + 1
    return RenderResult(info, manifest_path, tuple(outputs), frames, spec.downsample_ratio, elapsed)
