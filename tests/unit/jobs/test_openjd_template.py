"""OpenJD template: validates with openjd-model; its tasks are the segments, dependencies hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openjd.model import (  # noqa: E402
    ParameterValue,
    ParameterValueType,
    StepParameterSpaceIterator,
    create_job,
    decode_job_template,
)

from rvm_render.errors import ConfigError  # noqa: E402
from rvm_render.jobs.checkpoint import InputFingerprint, JobPlan, PlanFingerprint  # noqa: E402
from rvm_render.jobs.farm.openjd import (  # noqa: E402
    ASSEMBLE_STEP,
    SPECIFICATION_VERSION,
    index_range_expression,
    openjd_template,
    segment_waves,
    validate_openjd_template,
    write_openjd_template,
)
from rvm_render.jobs.segments import PlanMode, SegmentPolicy, plan_segments  # noqa: E402

FINGERPRINT = PlanFingerprint(InputFingerprint("/media/shot010.mov", 10, 20, "0" * 64), "1" * 64, "2" * 64)


def _plan(frames_total: int, cuts: tuple[int, ...], max_frames: int, mode: PlanMode) -> JobPlan:
    policy = SegmentPolicy(max_frames=max_frames, preroll_frames=8)
    return JobPlan(FINGERPRINT, frames_total, policy, mode,
                   tuple(plan_segments(frames_total, cuts, policy, mode)), cuts)


PLANS = {
    "sequential-3-shots": _plan(100, (30, 60), 12, "sequential"),
    "parallel-3-shots": _plan(100, (30, 60), 12, "parallel"),
    "sequential-one-shot": _plan(50, (), 10, "sequential"),
    "one-segment": _plan(5, (), 10, "sequential"),
    "cut-every-frame": _plan(6, (1, 2, 3, 4, 5), 10, "sequential"),
}


def _parse_range(expression: str) -> list[int]:
    """Second computation of an OpenJD integer range expression (lists and a-b runs)."""
    values: list[int] = []
    for part in expression.split(","):
        first, _, last = part.partition("-")
        values += range(int(first), int(last or first) + 1)
    return values


@pytest.mark.parametrize("indices", [[0], [0, 1, 2], [5, 0, 2, 3, 9, 8, 7], list(range(0, 3000, 2))])
def test_index_range_expression_round_trips(indices: list[int]) -> None:
    expression = index_range_expression(indices)
    assert _parse_range(expression) == sorted(indices)
    assert len(expression.split(",")) == len({i for i in indices if i - 1 not in indices})


def test_index_range_expression_needs_indices() -> None:
    with pytest.raises(ValueError):
        index_range_expression([])


@pytest.mark.parametrize("name", PLANS)
def test_waves_put_each_dependency_one_wave_earlier(name: str) -> None:
    plan = PLANS[name]
    waves = segment_waves(plan.segments)
    wave_of = {index: position for position, wave in enumerate(waves) for index in wave}
    assert sorted(wave_of) == [s.index for s in plan.segments]
    for segment in plan.segments:
        if segment.depends_on is None:
            assert wave_of[segment.index] == 0
        else:
            assert wave_of[segment.depends_on] == wave_of[segment.index] - 1
    if plan.mode == "parallel":
        assert len(waves) == 1


def _job_tasks(template: dict[str, object]) -> list[tuple[str, list[str], list[int], list[str]]]:
    """(step, dependencies, segment indices, onRun argv) of the job OpenJD creates."""
    job = create_job(
        job_template=decode_job_template(template=template),
        job_parameter_values={"WorkDir": ParameterValue(type=ParameterValueType.PATH, value="/farm/work"),
                              "RvmRender": ParameterValue(type=ParameterValueType.STRING, value="rvm-render")},
    )
    steps = []
    for step in job.steps:
        if step.parameterSpace is None:
            tasks = [-1]  # one task without parameters
        else:
            tasks = [int(task["Index"].value) for task in StepParameterSpaceIterator(space=step.parameterSpace)]
        action = step.script.actions.onRun
        steps.append((step.name, [d.dependsOn for d in step.dependencies or []], tasks,
                      [action.command, *(action.args or [])]))
    return steps


@pytest.mark.parametrize("name", PLANS)
def test_template_validates_and_has_one_task_per_segment(name: str) -> None:
    plan = PLANS[name]
    template = openjd_template(plan)
    assert template["specificationVersion"] == SPECIFICATION_VERSION
    validate_openjd_template(template)
    *steps, assemble = _job_tasks(template)
    assert assemble == (ASSEMBLE_STEP, [name for name, *_ in steps], [-1],
                        ["{{Param.RvmRender}}", "assemble", "{{Param.WorkDir}}"])
    all_tasks = sorted(index for _, _, tasks, _ in steps for index in tasks)
    assert all_tasks == [s.index for s in plan.segments]
    step_of = {index: position for position, (_, _, tasks, _) in enumerate(steps) for index in tasks}
    for position, (_, dependencies, _, argv) in enumerate(steps):
        assert dependencies == ([] if position == 0 else [steps[position - 1][0]])
        # Format strings resolve per task at run time (tests/integration/test_farm.py runs them).
        assert argv == ["{{Param.RvmRender}}", "segment", "{{Param.WorkDir}}", "--index", "{{Task.Param.Index}}"]
    for segment in plan.segments:
        if segment.depends_on is not None:
            # Its step runs after (transitively depends on) the step of its dependency.
            assert step_of[segment.depends_on] < step_of[segment.index]


def test_assemble_step_can_be_left_out() -> None:
    template = openjd_template(PLANS["sequential-3-shots"], assemble=False)
    validate_openjd_template(template)
    assert [step["name"] for step in template["steps"]] == [
        f"Wave-{n}" for n in range(len(segment_waves(PLANS["sequential-3-shots"].segments)))]


def test_options_reach_the_template() -> None:
    template = openjd_template(PLANS["parallel-3-shots"], work_dir=None, job_name="matte shot010",
                               executable="/opt/rvm/bin/rvm-render", extra_args=["--device", "cuda"],
                               gpus_per_task=1)
    validate_openjd_template(template)
    assert template["name"] == "matte shot010"
    parameters = {p["name"]: p for p in template["parameterDefinitions"]}
    assert "default" not in parameters["WorkDir"]
    assert parameters["RvmRender"]["default"] == "/opt/rvm/bin/rvm-render"
    step = template["steps"][0]
    assert step["script"]["actions"]["onRun"]["args"][-2:] == ["--device", "cuda"]
    assert step["hostRequirements"] == {"amounts": [{"name": "amount.worker.gpu", "min": 1}]}
    final = template["steps"][-1]
    assert final["name"] == ASSEMBLE_STEP and "hostRequirements" not in final
    assert final["script"]["actions"]["onRun"]["args"] == ["assemble", "{{Param.WorkDir}}"]


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="relative"):
        openjd_template(PLANS["one-segment"], work_dir=str(tmp_path))
    empty = JobPlan(FINGERPRINT, 0, SegmentPolicy(max_frames=1), "sequential", ())
    with pytest.raises(ConfigError, match="no segments"):
        openjd_template(empty)
    with pytest.raises(ConfigError, match="gpus_per_task"):
        openjd_template(PLANS["one-segment"], gpus_per_task=-1)


def test_invalid_template_is_reported_as_config_error() -> None:
    template = openjd_template(PLANS["one-segment"])
    template["steps"][0]["dependencies"] = [{"dependsOn": "Wave-9"}]
    with pytest.raises(ConfigError, match="does not validate"):
        validate_openjd_template(template)


def test_written_template_reads_back(tmp_path: Path) -> None:
    template = openjd_template(PLANS["sequential-3-shots"])
    path = write_openjd_template(template, tmp_path / "job.openjd.json")
    assert json.loads(path.read_text()) == template
