"""Farm jobs run for real: `openjd run` on the template, and the OpenCue spec's commands.

The task command is a small Python stand-in for ``rvm-render segment WORKDIR --index K`` that
uses the real WorkDir: it takes the state its segment starts from (``state_before`` refuses if
the segment before it has not finished), checks it is the one that segment saved, appends K
to ``order.txt`` and marks the segment done; as ``assemble WORKDIR`` it refuses to run before
every segment is done and appends ``assemble``. So a finished run proves coverage and order.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from rvm_render.jobs.checkpoint import WorkDir, plan_for
from rvm_render.jobs.segments import PlanMode, SegmentPolicy


from rvm_render.jobs.farm.opencue import INDEX_TOKEN, opencue_job_spec, opencue_outline  # noqa: E402
from rvm_render.jobs.farm.openjd import (  # noqa: E402
    TEMPLATE_FILE,
    openjd_template,
    validate_openjd_template,
    write_openjd_template,
)

REPO = Path(__file__).resolve().parents[2]
OPENJD = Path(sys.executable).parent / "openjd"
FRAMES_TOTAL = 247  # 05_default_juggle.mp4, per testdata/clips/LICENSES.md

STAND_IN = """\
#!{python}
import sys
sys.path.insert(0, {repo!r})
from rvm_render.jobs.checkpoint import WorkDir

command, work_dir, *rest = sys.argv[1:]
work = WorkDir.load(work_dir)
if command == "assemble":
    assert rest == [], sys.argv
    if not work.is_complete():
        sys.exit(f"assemble ran before segments {{work.pending_segments()}} finished")
    with open(work.path / "order.txt", "a") as order:
        order.write("assemble\\n")
    sys.exit(0)
flag, index = rest
assert (command, flag) == ("segment", "--index"), sys.argv
k = int(index)
work.check_input()
segment = work.plan.segment(k)
state = work.state_before(k)
expected = None if segment.depends_on is None else f"state-{{segment.depends_on}}".encode()
if state != expected:
    sys.exit(f"segment {{k}} started from {{state!r}}, expected {{expected!r}}")
with open(work.path / "order.txt", "a") as order:
    order.write(f"{{k}}\\n")
work.mark_done(k, f"state-{{k}}".encode(), {{"frames": [segment.first_frame, segment.last_frame]}})
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    script = tmp_path / "bin" / "rvm-render-stand-in"
    script.parent.mkdir()
    script.write_text(STAND_IN.format(python=sys.executable, repo=str(REPO)))
    script.chmod(0o755)
    return script


def _work_dir(clips_dir: Path, tmp_path: Path, mode: PlanMode) -> WorkDir:
    plan = plan_for(clips_dir / "05_default_juggle.mp4", "f" * 64, {"formats": ["exr"]}, FRAMES_TOTAL,
                    [100, 180], SegmentPolicy(max_frames=30, preroll_frames=10), mode)
    return WorkDir.open(tmp_path / "out" / ".rvm-work" / "juggle", plan)


def _check_run(work: WorkDir) -> None:
    *lines, last = (work.path / "order.txt").read_text().split()
    assert last == "assemble", "assembled once, after every segment"
    order = [int(line) for line in lines]
    assert sorted(order) == [s.index for s in work.plan.segments], "every segment exactly once"
    position = {index: n for n, index in enumerate(order)}
    for segment in work.plan.segments:
        if segment.depends_on is not None:
            assert position[segment.depends_on] < position[segment.index]
    reloaded = WorkDir.load(work.path)
    assert reloaded.is_complete()
    assert reloaded.outputs() == [{"frames": [s.first_frame, s.last_frame]} for s in work.plan.segments]


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_openjd_run_renders_every_segment_in_order(clips_dir: Path, tmp_path: Path, stand_in: Path,
                                                   mode: PlanMode) -> None:
    work = _work_dir(clips_dir, tmp_path, mode)
    assert len(work.plan.segments) > 3
    template = openjd_template(work.plan)
    validate_openjd_template(template)
    path = write_openjd_template(template, work.path / TEMPLATE_FILE)
    run = subprocess.run(
        [str(OPENJD), "run", str(path), "--job-param", f"RvmRender={stand_in}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    _check_run(work)


def test_openjd_run_fails_when_a_chain_is_broken(clips_dir: Path, tmp_path: Path, stand_in: Path) -> None:
    """Control: a template that runs a dependent segment first fails (the stand-in checks order)."""
    work = _work_dir(clips_dir, tmp_path, "sequential")
    template = openjd_template(work.plan, assemble=False)
    template["steps"] = template["steps"][1:2]
    del template["steps"][0]["dependencies"]
    path = write_openjd_template(template, work.path / TEMPLATE_FILE)
    run = subprocess.run([str(OPENJD), "run", str(path), "--job-param", f"RvmRender={stand_in}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "has not finished" in run.stdout + run.stderr
    assert WorkDir.load(work.path).completed_segments() == []


def test_opencue_commands_render_every_segment_in_order(
    clips_dir: Path, tmp_path: Path, stand_in: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs the spec as Cuebot + RQD would: layers after their dependencies, tokens replaced, sh -c."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    work = _work_dir(clips_dir, tmp_path, "sequential")
    spec = opencue_job_spec(opencue_outline(work.plan, str(work.path), executable=str(stand_in)))
    root = ElementTree.fromstring(spec.split("?>", 1)[1].split(">", 1)[1])
    waiting_on = {d.findtext("deplayer"): d.findtext("onlayer") for d in root.findall("depends/depend")}
    finished: set[str | None] = {None}
    for layer in root.findall("job/layers/layer"):
        assert waiting_on.get(layer.get("name")) in finished, "layers are listed after their dependencies"
        assert layer.findtext("chunk") == "1"
        for part in layer.findtext("range", "").split(","):
            first, _, last = part.partition("-")
            for frame in range(int(first), int(last or first) + 1):
                command = layer.findtext("cmd", "").replace(INDEX_TOKEN, str(frame))
                command = command.replace("#FRAME_END#", str(frame))
                run = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60)
                assert run.returncode == 0, shlex.quote(command) + run.stderr[-2000:]
        finished.add(layer.get("name"))
    _check_run(work)
