"""WorkDir: plan round trip, resume, mismatch refusal, state hand-over, atomic writes."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import shutil
from fractions import Fraction
from pathlib import Path

import pytest

from rvm_render.errors import CheckpointMismatchError, JobError, JobNotFoundError
from rvm_render.jobs import checkpoint
from rvm_render.jobs.checkpoint import (
    InputFingerprint,
    JobPlan,
    WorkDir,
    default_work_dir,
    plan_for,
    settings_hash,
)
from rvm_render.jobs.segments import SegmentPolicy, plan_segments
from rvm_render.media.fingerprint import HEAD_BYTES

FRAMES_TOTAL = 247  # 05_default_juggle.mp4 (LICENSES.md); only the plan uses it here


class Fmt(enum.Enum):
    EXR = "exr"
    PNG = "png"


@dataclasses.dataclass(frozen=True)
class Settings:
    formats: tuple[Fmt, ...] = (Fmt.EXR,)
    downsample_ratio: float | str = "auto"
    rate: Fraction = Fraction(24000, 1001)
    background: Path | None = None


@pytest.fixture
def clip(shared_dir: Path, tmp_path: Path) -> Path:
    """A copy of a real clip that tests may touch or change."""
    copy = tmp_path / "in" / "juggle.mp4"
    copy.parent.mkdir()
    shutil.copyfile(shared_dir / "testdata" / "clips" / "05_default_juggle.mp4", copy)
    return copy


def _plan(clip: Path, settings: object = Settings(), weights: str = "a" * 64, max_frames: int = 50) -> JobPlan:
    return plan_for(clip, weights, settings, FRAMES_TOTAL, [100], SegmentPolicy(max_frames=max_frames), "sequential")


def test_fingerprint_is_size_mtime_and_head_hash(clip: Path) -> None:
    stat = clip.stat()
    expected_head = hashlib.sha256(clip.read_bytes()[:HEAD_BYTES]).hexdigest()
    assert InputFingerprint.of(clip) == InputFingerprint(str(clip.resolve()), stat.st_size,
                                                         stat.st_mtime_ns, expected_head)


def test_fingerprint_of_missing_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="missing.mp4"):
        InputFingerprint.of(tmp_path / "missing.mp4")


def test_settings_hash_is_canonical() -> None:
    assert settings_hash(Settings()) == settings_hash(Settings())
    assert settings_hash(Settings()) != settings_hash(Settings(formats=(Fmt.PNG,)))
    assert settings_hash(Settings()) != settings_hash(Settings(background=Path("bg.png")))
    assert settings_hash({"a": 1, "b": [1, 2]}) == settings_hash({"b": (1, 2), "a": 1})
    with pytest.raises(TypeError, match="object"):
        settings_hash({"x": object()})


def test_default_work_dir_is_under_output(tmp_path: Path) -> None:
    assert default_work_dir(tmp_path, "shot010") == tmp_path / ".rvm-work" / "shot010"


def test_plan_round_trips_through_plan_json(clip: Path, tmp_path: Path) -> None:
    plan = _plan(clip)
    work = WorkDir.open(tmp_path / "work", plan)
    document = json.loads((work.path / "plan.json").read_text())
    assert document["input"]["path"] == str(clip.resolve())
    assert JobPlan.from_json(document) == plan
    assert WorkDir.load(work.path).plan == plan


def test_resume_lists_finished_segments(clip: Path, tmp_path: Path) -> None:
    plan = _plan(clip)
    first, second = (s.index for s in plan.segments if s.starts_at_cut)
    work = WorkDir.open(tmp_path / "work", plan)
    assert work.completed_segments() == [] and work.ready_segments() == [first, second]
    state_first, state_second = os.urandom(4096), os.urandom(100)
    work.mark_done(first, state_first, {"exr": "out/juggle.%04d.exr"})
    work.mark_done(second, state_second, ["a"])
    resumed = WorkDir.open(tmp_path / "work", _plan(clip))
    assert resumed.completed_segments() == [first, second]
    assert resumed.pending_segments() == [s.index for s in plan.segments if s.index not in (first, second)]
    assert resumed.ready_segments() == [first + 1, second + 1]
    assert resumed.state_before(first + 1) == state_first
    assert resumed.state_before(second + 1) == state_second
    assert resumed.state_before(first) is None and resumed.state_before(second) is None
    assert resumed.outputs() == [{"exr": "out/juggle.%04d.exr"}, ["a"]]
    record = resumed.completed(first)
    assert record is not None and record.state_sha256 == hashlib.sha256(state_first).hexdigest()
    assert not resumed.is_complete()


def test_state_of_unfinished_dependency_is_refused(clip: Path, tmp_path: Path) -> None:
    work = WorkDir.open(tmp_path / "work", _plan(clip))
    with pytest.raises(JobError, match="run segment 0 first"):
        work.state_before(1)
    with pytest.raises(JobNotFoundError, match="segment 99"):
        work.state_before(99)


def test_segment_others_depend_on_must_save_state(clip: Path, tmp_path: Path) -> None:
    work = WorkDir.open(tmp_path / "work", _plan(clip))
    with pytest.raises(JobError, match="needs its final state"):
        work.mark_done(0, None)
    assert work.completed_segments() == []


def test_corrupt_state_is_refused(clip: Path, tmp_path: Path) -> None:
    work = WorkDir.open(tmp_path / "work", _plan(clip))
    work.mark_done(0, b"state bytes")
    work.state_path(0).write_bytes(b"state bytez")
    with pytest.raises(JobError, match="corrupt"):
        work.state_before(1)
    work.state_path(0).unlink()
    with pytest.raises(JobError, match="segment-0.done.json"):
        work.state_before(1)


def test_done_file_for_other_frames_is_ignored(clip: Path, tmp_path: Path) -> None:
    work = WorkDir.open(tmp_path / "work", _plan(clip))
    last = work.plan.segments[-1].index
    work.mark_done(last, None)
    done = work.path / f"segment-{last}.done.json"
    document = json.loads(done.read_text())
    done.write_text(json.dumps({**document, "last_frame": document["last_frame"] + 1}))
    assert work.completed_segments() == []
    done.write_text("{not json")
    assert work.completed_segments() == []


def test_all_done_is_complete(clip: Path, tmp_path: Path) -> None:
    work = WorkDir.open(tmp_path / "work", _plan(clip))
    for segment in work.plan.segments:
        work.mark_done(segment.index, b"s")
    assert work.is_complete()
    work.remove()
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("touch", "input mtime_ns"),
        ("append", "input size_bytes"),
        ("weights", "weights_sha256"),
        ("settings", "settings_hash"),
        ("policy", "segment policy"),
    ],
)
def test_other_render_in_work_dir_is_refused(clip: Path, tmp_path: Path, change: str, field: str) -> None:
    WorkDir.open(tmp_path / "work", _plan(clip))
    if change == "touch":
        stat = clip.stat()
        os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    elif change == "append":
        with clip.open("ab") as stream:
            stream.write(b"\0")
    plan = _plan(
        clip,
        settings=Settings(downsample_ratio=0.25) if change == "settings" else Settings(),
        weights=("b" if change == "weights" else "a") * 64,
        max_frames=60 if change == "policy" else 50,
    )
    with pytest.raises(CheckpointMismatchError, match=field) as caught:
        WorkDir.open(tmp_path / "work", plan)
    message = str(caught.value)
    assert "--work-dir" in message and "delete" in message and str(tmp_path / "work") in message
    assert "\n" not in message


def test_check_input_sees_a_changed_head(clip: Path, tmp_path: Path) -> None:
    work = WorkDir.open(tmp_path / "work", _plan(clip))
    work.check_input()
    stat = clip.stat()
    data = bytearray(clip.read_bytes())
    data[10] ^= 0xFF
    clip.write_bytes(bytes(data))
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(CheckpointMismatchError, match="head_sha256"):
        work.check_input()


def test_load_without_plan_or_with_garbage(tmp_path: Path) -> None:
    with pytest.raises(JobNotFoundError, match="no plan.json"):
        WorkDir.load(tmp_path)
    (tmp_path / "plan.json").write_text('{"format": 1}')
    with pytest.raises(JobError, match="not an rvm_render plan"):
        WorkDir.load(tmp_path)
    (tmp_path / "plan.json").write_text("{")
    with pytest.raises(JobError, match="cannot read"):
        WorkDir.load(tmp_path)


def test_killed_between_state_and_done_leaves_segment_pending(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = WorkDir.open(tmp_path / "work", _plan(clip))
    real_replace = os.replace

    def replace_then_die(source: str, target: str | os.PathLike[str]) -> None:
        if str(target).endswith(".done.json"):
            raise KeyboardInterrupt("killed")
        real_replace(source, target)

    monkeypatch.setattr(checkpoint.os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        work.mark_done(0, b"state")
    monkeypatch.undo()
    assert work.state_path(0).read_bytes() == b"state"
    assert WorkDir.load(work.path).completed_segments() == []
    assert sorted(p.name for p in work.path.iterdir()) == ["plan.json", "state-0.pt"], "no temp files left"


def _spec(clip: Path, tmp_path: Path, **changes: object) -> checkpoint.RenderSpec:
    from rvm_render.media.writers import Background

    spec = checkpoint.RenderSpec(
        input_path=str(clip), output_dir=str(tmp_path / "out"), stem="juggle", first_frame=10, last_frame=109,
        formats=("prores4444", "exr"), background=Background(kind="image", path=tmp_path / "bg.png"),
        downsample_ratio=0.375, batch_frames=4, device="auto", precision="auto", variant="mobilenetv3",
        weights_path=None, weights_sha256="a" * 64,
    )
    return dataclasses.replace(spec, **changes)


def test_render_spec_and_range_survive_plan_json(clip: Path, tmp_path: Path) -> None:
    spec = _spec(clip, tmp_path)
    plan = plan_for(clip, spec.weights_sha256, spec.output_settings(), 100, [5, 50], SegmentPolicy(max_frames=40),
                    first_frame=10, spec=spec)
    assert plan.cuts == (50,), "cuts at or before the range's first frame are not cuts of the plan"
    unshifted = plan_segments(100, [50 - 10], SegmentPolicy(max_frames=40))
    assert [(s.first_frame, s.last_frame, s.starts_at_cut, s.depends_on) for s in plan.segments] == [
        (s.first_frame + 10, s.last_frame + 10, s.starts_at_cut, s.depends_on) for s in unshifted
    ]
    work = WorkDir.open(tmp_path / "work", plan)
    assert WorkDir.load(work.path).plan == plan
    assert WorkDir.open(work.path, plan).plan.spec == spec


def test_output_folder_change_is_a_mismatch(clip: Path, tmp_path: Path) -> None:
    spec = _spec(clip, tmp_path)
    plan = plan_for(clip, spec.weights_sha256, spec.output_settings(), 100, [], SegmentPolicy(max_frames=40),
                    first_frame=10, spec=spec)
    WorkDir.open(tmp_path / "work", plan)
    moved = dataclasses.replace(plan, spec=_spec(clip, tmp_path, output_dir=str(tmp_path / "elsewhere")))
    with pytest.raises(CheckpointMismatchError, match="output_dir"):
        WorkDir.open(tmp_path / "work", moved)
    other_device = dataclasses.replace(plan, spec=_spec(clip, tmp_path, device="cuda:1"))
    assert WorkDir.open(tmp_path / "work", other_device).plan == plan, "a task may run on another device"
