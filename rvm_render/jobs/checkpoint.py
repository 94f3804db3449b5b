"""Checkpoints at segment boundaries, so a stopped render resumes where it stopped.

A work dir (default ``OUTDIR/.rvm-work/<stem>/``) holds:

- ``plan.json``: what is being rendered (input path and fingerprint, model weights sha256,
  settings hash), the segment plan, and the :class:`RenderSpec`: everything another process
  or machine needs to render a segment (output folder, deliverables, engine options, weights);
- ``segment-K.done.json``: segment K finished, with its outputs and the sha256 of its state;
- ``state-K.pt``: the recurrent state (r1..r4) after segment K's last frame, as the opaque
  bytes the caller gives (``RecurrentState.to_bytes()``), for the segment that depends on K.

Every file is written atomically (temp file in the same folder, fsync, ``os.replace``, fsync of
the folder), and ``segment-K.done.json`` is written last: a segment is done exactly when its
done file exists, so a render killed at any moment resumes from the last finished segment.

Reopening a work dir made for a different input, model, settings or plan raises
:class:`~rvm_render.errors.CheckpointMismatchError` instead of mixing two renders.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path, PurePath
from typing import Any

from rvm_render.errors import CheckpointMismatchError, JobError, JobNotFoundError
from rvm_render.jobs.segments import PLAN_MODES, PlanMode, Segment, SegmentPolicy, plan_segments
from rvm_render.media.commit import writing_to
from rvm_render.media.fingerprint import InputFingerprint
from rvm_render.media.probe import MediaInfo, probe
from rvm_render.media.writers import Background

__all__ = [
    "PLAN_FILE",
    "WORK_DIR_NAME",
    "CompletedSegment",
    "InputFingerprint",
    "JobPlan",
    "PlanFingerprint",
    "RenderSpec",
    "WorkDir",
    "default_work_dir",
    "plan_for",
    "settings_hash",
]

log = logging.getLogger(__name__)

WORK_DIR_NAME = ".rvm-work"
PLAN_FILE = "plan.json"
PLAN_FORMAT = 1


def default_work_dir(output_dir: str | os.PathLike[str], stem: str) -> Path:
    """``output_dir/.rvm-work/<stem>``: where a clip's checkpoints go unless --work-dir says."""
    return Path(output_dir) / WORK_DIR_NAME / stem


def _jsonable(value: Any) -> Any:
    """A JSON-ready copy of settings: dataclasses, enums, paths, fractions, tuples, sets."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(item) for item in value)
    if isinstance(value, (PurePath, Fraction)):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot hash setting of type {type(value).__name__}: {value!r}")


def settings_hash(settings: object) -> str:
    """sha256 (hex) of render settings in canonical JSON; equal settings give equal hashes.

    Args:
        settings: a settings dataclass (e.g. ``RenderSettings``) or a mapping; may nest
            dataclasses, enums, paths, fractions, lists, tuples and sets.

    Raises:
        TypeError: a value of another type.
    """
    text = json.dumps(_jsonable(settings), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PlanFingerprint:
    """What a work dir renders: the input, the model weights and the settings."""

    input: InputFingerprint
    weights_sha256: str
    settings_hash: str


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """What a segment renders and how, so any process or machine can run it from the work dir.

    Attributes:
        input_path: the clip (absolute; a printf pattern for an image sequence).
        output_dir: where the assembled deliverables and the manifest go (absolute).
        stem: file-name stem of the deliverables.
        first_frame, last_frame: the rendered range of the clip (inclusive, 0-based).
        formats: deliverables (``OutputFormat`` values), in order.
        background: backdrop of the ``comp`` deliverable; None for the default.
        downsample_ratio: the resolved ratio (never ``"auto"``).
        batch_frames: frames per engine call.
        device: engine device as asked for (``"auto"``, ``"cpu"``, ``"cuda:0"``...); a task may
            override it.
        precision: ``"auto"``, ``"fp32"`` or ``"fp16"`` as asked for.
        variant: model variant of the weights (``"mobilenetv3"``, ``"resnet50"``).
        weights_path: weights file or tfjs folder as seen by the planner; None: the usual lookup.
        weights_sha256: digest the weights must have.
        warmup_frames: warm start before each shot (:func:`~rvm_render.pipeline.render.warm_up`).
        rate: the input's frame rate as the planner had it (``24000/1001``: an image sequence's
            rate comes from the edit, not the files); None in plans written before it was recorded.
        timecode: the start timecode movie deliverables count from, as the planner had it (a
            timeline conform's, where its edit places the media); None: the input's own.
    """

    input_path: str
    output_dir: str
    stem: str
    first_frame: int
    last_frame: int
    formats: tuple[str, ...]
    background: Background | None
    downsample_ratio: float
    batch_frames: int
    device: str
    precision: str
    variant: str | None
    weights_path: str | None
    weights_sha256: str
    warmup_frames: int = 0
    rate: str | None = None
    timecode: str | None = None

    def input_info(self) -> MediaInfo:
        """The input probed again (by a segment task or the assembly), at the planner's rate and timecode.

        Raises:
            MediaError: the input cannot be read.
        """
        rate = {} if self.rate is None else {"sequence_rate": Fraction(self.rate)}
        info = probe(self.input_path, **rate)
        return info if self.timecode is None else dataclasses.replace(info, timecode=self.timecode)

    def output_settings(self) -> dict[str, Any]:
        """The fields that change the rendered pixels: what :func:`settings_hash` covers."""
        return {
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "formats": list(self.formats),
            "background": _jsonable(self.background),
            "downsample_ratio": self.downsample_ratio,
            "batch_frames": self.batch_frames,
            "precision": self.precision,
            "variant": self.variant,
            "warmup_frames": self.warmup_frames,
        }

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = _jsonable(self)
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> RenderSpec:
        """Parse the ``spec`` entry of ``plan.json``.

        Raises:
            KeyError, TypeError, ValueError: not a spec of this format.
        """
        values = dict(document)
        background = values.pop("background")
        if background is not None:
            path = background.get("path")
            background = Background(
                kind=background["kind"],
                colour=tuple(float(c) for c in background["colour"]),  # type: ignore[arg-type]
                path=None if path is None else Path(path),
            )
        values["formats"] = tuple(str(name) for name in values["formats"])
        return cls(background=background, **values)


@dataclass(frozen=True, slots=True)
class JobPlan:
    """Everything ``plan.json`` records: the fingerprint and the segment plan made for it.

    ``frames_total`` is the number of frames the plan covers; segments hold clip frame indices
    (they start at ``spec.first_frame`` when a range of the clip is rendered). ``spec`` is None
    for a plan that only schedules work (farm tests); a render needs it.
    """

    fingerprint: PlanFingerprint
    frames_total: int
    policy: SegmentPolicy
    mode: PlanMode
    segments: tuple[Segment, ...]
    cuts: tuple[int, ...] = ()
    spec: RenderSpec | None = None

    def segment(self, index: int) -> Segment:
        """The segment with this index.

        Raises:
            JobNotFoundError: no such segment in the plan.
        """
        if not 0 <= index < len(self.segments):
            raise JobNotFoundError(
                f"segment {index} is not in the plan (segments 0..{len(self.segments) - 1}); check --index"
            )
        return self.segments[index]

    def to_json(self) -> dict[str, Any]:
        """The ``plan.json`` document."""
        return {
            "format": PLAN_FORMAT,
            "input": dataclasses.asdict(self.fingerprint.input),
            "weights_sha256": self.fingerprint.weights_sha256,
            "settings_hash": self.fingerprint.settings_hash,
            "frames_total": self.frames_total,
            "cuts": list(self.cuts),
            "policy": dataclasses.asdict(self.policy),
            "mode": self.mode,
            "segments": [dataclasses.asdict(segment) for segment in self.segments],
            "spec": None if self.spec is None else self.spec.to_json(),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> JobPlan:
        """Parse a ``plan.json`` document.

        Raises:
            KeyError, TypeError, ValueError: the document is not a plan of this format.
        """
        if document.get("format") != PLAN_FORMAT:
            raise ValueError(f"unknown plan format {document.get('format')!r}")
        mode = document["mode"]
        if mode not in PLAN_MODES:
            raise ValueError(f"unknown mode {mode!r}")
        return cls(
            fingerprint=PlanFingerprint(
                input=InputFingerprint(**document["input"]),
                weights_sha256=str(document["weights_sha256"]),
                settings_hash=str(document["settings_hash"]),
            ),
            frames_total=int(document["frames_total"]),
            policy=SegmentPolicy(**document["policy"]),
            mode=mode,
            segments=tuple(Segment(**segment) for segment in document["segments"]),
            cuts=tuple(int(cut) for cut in document.get("cuts", ())),
            spec=None if document.get("spec") is None else RenderSpec.from_json(document["spec"]),
        )


@dataclass(frozen=True, slots=True)
class CompletedSegment:
    """What ``segment-K.done.json`` records about a finished segment."""

    index: int
    first_frame: int
    last_frame: int
    state_sha256: str | None
    state_size_bytes: int | None
    outputs: Any
    finished_at: float


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    Raises:
        OutputError: the file cannot be written.
    """
    with writing_to(path):
        handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where folders cannot be opened, e.g. Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _json_bytes(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def _mismatch(work_dir: Path, what: str, found: object, wanted: object) -> CheckpointMismatchError:
    return CheckpointMismatchError(
        f"work dir '{work_dir}' belongs to another render ({what}: {found!r} there, {wanted!r} now); "
        f"pass a different --work-dir or delete that folder to start over"
    )


def _plan_differences(found: JobPlan, wanted: JobPlan) -> tuple[str, object, object] | None:
    """The first field in which two plans differ, as (name, found, wanted)."""
    found_input, wanted_input = found.fingerprint.input, wanted.fingerprint.input
    checks: list[tuple[str, object, object]] = [
        ("input path", found_input.path, wanted_input.path),
        ("input size_bytes", found_input.size_bytes, wanted_input.size_bytes),
        ("input mtime_ns", found_input.mtime_ns, wanted_input.mtime_ns),
        ("input head_sha256", found_input.head_sha256, wanted_input.head_sha256),
        ("weights_sha256", found.fingerprint.weights_sha256, wanted.fingerprint.weights_sha256),
        ("settings_hash", found.fingerprint.settings_hash, wanted.fingerprint.settings_hash),
        ("frames_total", found.frames_total, wanted.frames_total),
        ("segment policy", found.policy, wanted.policy),
        ("segment mode", found.mode, wanted.mode),
        ("cuts", found.cuts, wanted.cuts),
        ("segments", found.segments, wanted.segments),
        ("output_dir", found.spec and found.spec.output_dir, wanted.spec and wanted.spec.output_dir),
    ]
    for name, found_value, wanted_value in checks:
        if found_value != wanted_value:
            return name, found_value, wanted_value
    return None


class WorkDir:
    """A render's checkpoint folder: its plan, finished segments and hand-over states.

    Open one with :meth:`open` (create or resume, checking the plan) or :meth:`load` (a farm
    task reading the plan that the submitter wrote).
    """

    def __init__(self, path: Path, plan: JobPlan) -> None:
        self.path = path
        self.plan = plan

    @classmethod
    def open(cls, path: str | os.PathLike[str], plan: JobPlan) -> WorkDir:
        """Create a work dir for ``plan``, or resume one made for the same plan.

        Args:
            path: the work dir (created with parents if missing).
            plan: the plan of the render about to run.

        Raises:
            CheckpointMismatchError: the folder holds a plan for another input, model,
                settings or segmentation.
            JobError: the folder's plan.json is unreadable.
            OutputError: the folder cannot be created or written.
        """
        folder = Path(path)
        plan_path = folder / PLAN_FILE
        if plan_path.exists():
            existing = cls.load(folder)
            difference = _plan_differences(existing.plan, plan)
            if difference is not None:
                raise _mismatch(folder, *difference)
            log.info("resuming work dir %s: %d of %d segments done", folder,
                     len(existing.completed_segments()), len(plan.segments))
            return existing
        with writing_to(folder):
            folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(plan_path, _json_bytes(plan.to_json()))
        log.info("new work dir %s: %d segments", folder, len(plan.segments))
        return cls(folder, plan)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> WorkDir:
        """Open an existing work dir as it is (no fingerprint check; see :meth:`check_input`).

        Raises:
            JobNotFoundError: there is no plan.json in the folder.
            JobError: plan.json is unreadable or not a plan.
        """
        folder = Path(path)
        plan_path = folder / PLAN_FILE
        try:
            document = json.loads(plan_path.read_bytes())
        except FileNotFoundError as err:
            raise JobNotFoundError(
                f"no {PLAN_FILE} in work dir '{folder}'; plan the render first (rvm-render farm or matte)"
            ) from err
        except (OSError, ValueError) as err:
            raise JobError(f"cannot read '{plan_path}': {err}; delete the work dir to start over") from err
        try:
            plan = JobPlan.from_json(document)
        except (KeyError, TypeError, ValueError) as err:
            raise JobError(
                f"'{plan_path}' is not an rvm_render plan ({err}); delete the work dir to start over"
            ) from err
        return cls(folder, plan)

    def check_input(self, fingerprint: InputFingerprint | None = None) -> None:
        """Check that the input file is still the one the plan was made for.

        Args:
            fingerprint: the input as seen now; default: fingerprint the plan's input path.

        Raises:
            CheckpointMismatchError: the input changed since the plan was made.
            JobError: the input cannot be read.
        """
        recorded = self.plan.fingerprint.input
        current = fingerprint if fingerprint is not None else InputFingerprint.of(recorded.path)
        for field in dataclasses.fields(InputFingerprint):
            found, wanted = getattr(recorded, field.name), getattr(current, field.name)
            if found != wanted:
                raise _mismatch(self.path, f"input {field.name}", found, wanted)

    def done_path(self, index: int) -> Path:
        """``segment-K.done.json``: present exactly when segment ``index`` is finished."""
        return self.path / f"segment-{index}.done.json"

    def state_path(self, index: int) -> Path:
        """Where the state after segment ``index`` is kept."""
        return self.path / f"state-{index}.pt"

    def completed(self, index: int) -> CompletedSegment | None:
        """The done record of segment ``index``, or None if it has not finished.

        A done file that does not match the plan's segment (e.g. edited by hand) counts as
        not done, with a warning.
        """
        segment = self.plan.segment(index)
        try:
            document = json.loads(self.done_path(index).read_bytes())
            record = CompletedSegment(**document)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as err:
            log.warning("ignoring unreadable %s: %s", self.done_path(index), err)
            return None
        if (record.index, record.first_frame, record.last_frame) != (
            segment.index, segment.first_frame, segment.last_frame
        ):
            log.warning("ignoring %s: frames %d..%d do not match the plan's %d..%d",
                        self.done_path(index), record.first_frame, record.last_frame,
                        segment.first_frame, segment.last_frame)
            return None
        return record

    def completed_segments(self) -> list[int]:
        """Indices of finished segments, ascending."""
        return [s.index for s in self.plan.segments if self.completed(s.index) is not None]

    def pending_segments(self) -> list[int]:
        """Indices of segments not finished yet, ascending."""
        done = set(self.completed_segments())
        return [s.index for s in self.plan.segments if s.index not in done]

    def ready_segments(self) -> list[int]:
        """Unfinished segments that can start now (no dependency, or it has finished)."""
        done = set(self.completed_segments())
        return [
            s.index for s in self.plan.segments
            if s.index not in done and (s.depends_on is None or s.depends_on in done)
        ]

    def is_complete(self) -> bool:
        """Whether every segment has finished."""
        return not self.pending_segments()

    def mark_done(self, index: int, state_bytes: bytes | None, outputs: Any = None) -> CompletedSegment:
        """Record that segment ``index`` finished; its state first, the done file last.

        Args:
            index: the segment.
            state_bytes: recurrent state after the segment's last frame
                (``RecurrentState.to_bytes()``), or None when no segment depends on it.
            outputs: JSON-ready description of what the segment wrote (paths, frame ranges).

        Returns:
            The record written.

        Raises:
            JobNotFoundError: no such segment.
            JobError: a segment depends on this one but ``state_bytes`` is None.
            TypeError, ValueError: ``outputs`` is not JSON-ready.
        """
        segment = self.plan.segment(index)
        dependents = [s.index for s in self.plan.segments if s.depends_on == index]
        if dependents and state_bytes is None:
            raise JobError(f"segment {index} of '{self.path}' needs its final state saved: "
                           f"segment {dependents[0]} starts from it")
        state_sha256: str | None = None
        state_size: int | None = None
        if state_bytes is not None:
            _write_atomic(self.state_path(index), state_bytes)
            state_sha256 = hashlib.sha256(state_bytes).hexdigest()
            state_size = len(state_bytes)
        record = CompletedSegment(
            index=index,
            first_frame=segment.first_frame,
            last_frame=segment.last_frame,
            state_sha256=state_sha256,
            state_size_bytes=state_size,
            outputs=outputs,
            finished_at=time.time(),
        )
        _write_atomic(self.done_path(index), _json_bytes(dataclasses.asdict(record)))
        log.info("segment %d (frames %d..%d) done", index, segment.first_frame, segment.last_frame)
        return record

    def state_before(self, index: int) -> bytes | None:
        """The state segment ``index`` starts from: None for a fresh start, else the saved bytes.

        Raises:
            JobNotFoundError: no such segment.
            JobError: the segment it depends on has not finished, or its state file is
                missing or does not match the sha256 recorded when it was written.
        """
        segment = self.plan.segment(index)
        if segment.depends_on is None:
            return None
        previous = segment.depends_on
        record = self.completed(previous)
        if record is None:
            raise JobError(f"segment {index} of '{self.path}' starts from the state of segment "
                           f"{previous}, which has not finished; run segment {previous} first")
        state_path = self.state_path(previous)
        try:
            data = state_path.read_bytes()
        except OSError as err:
            raise JobError(f"cannot read state '{state_path}': {err.strerror}; delete "
                           f"'{self.done_path(previous)}' to render segment {previous} again") from err
        if hashlib.sha256(data).hexdigest() != record.state_sha256:
            raise JobError(f"state '{state_path}' is corrupt (sha256 differs from its done record); "
                           f"delete '{self.done_path(previous)}' to render segment {previous} again")
        return data

    def outputs(self) -> list[Any]:
        """Outputs recorded by finished segments, in segment order."""
        records = (self.completed(s.index) for s in self.plan.segments)
        return [record.outputs for record in records if record is not None]

    def remove(self) -> None:
        """Delete the work dir (after the render has been committed), and ``.rvm-work/`` once it is empty."""
        shutil.rmtree(self.path)
        log.info("removed work dir %s", self.path)
        parent = self.path.parent
        if parent.name == WORK_DIR_NAME:
            try:
                parent.rmdir()
            except OSError:  # other clips' work dirs are still in it
                pass


def plan_for(
    input_path: str | os.PathLike[str],
    weights_sha256: str,
    settings: object,
    frames_total: int,
    cuts: Sequence[int],
    policy: SegmentPolicy,
    mode: PlanMode = "sequential",
    *,
    first_frame: int = 0,
    spec: RenderSpec | None = None,
) -> JobPlan:
    """Fingerprint the input and plan its segments: the :class:`JobPlan` a render records.

    Args:
        input_path: the input file (first file of an image sequence).
        weights_sha256: ``Matter.weights_sha256`` / ``LoadedWeights.sha256``.
        settings: the render settings (hashed with :func:`settings_hash`).
        frames_total: frames to render (the whole input, or the range from ``first_frame``).
        cuts: shot cuts as clip frame indices (:func:`rvm_render.jobs.cuts.detect_cuts`),
            empty for none; ``first_frame`` and cuts before it are ignored.
        policy: segment length and preroll.
        mode: ``"sequential"`` or ``"parallel"``.
        first_frame: clip index of the first frame rendered; segments are shifted by it.
        spec: how to render, recorded for segment tasks (:class:`RenderSpec`).
    """
    cut_list = tuple(sorted({int(cut) for cut in cuts if cut > first_frame}))
    segments = plan_segments(frames_total, [cut - first_frame for cut in cut_list], policy, mode)
    if first_frame:
        segments = [_shifted(segment, first_frame) for segment in segments]
    return JobPlan(
        fingerprint=PlanFingerprint(InputFingerprint.of(input_path), weights_sha256, settings_hash(settings)),
        frames_total=frames_total,
        policy=policy,
        mode=mode,
        segments=tuple(segments),
        cuts=cut_list,
        spec=spec,
    )


def _shifted(segment: Segment, frames: int) -> Segment:
    """``segment`` with every frame index moved by ``frames``."""
    preroll = segment.preroll_first_frame
    return dataclasses.replace(
        segment,
        first_frame=segment.first_frame + frames,
        last_frame=segment.last_frame + frames,
        preroll_first_frame=None if preroll is None else preroll + frames,
    )
