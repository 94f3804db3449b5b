"""Farm jobs run for real: `openjd run` on the template, and the OpenCue spec's commands.

The last tests export a real clip with ``rvm-render farm export`` and run the OpenJD job with the
real ``rvm-render segment`` and ``rvm-render assemble``; the others use the stand-in below.

The task command is a small Python stand-in for ``rvm-render segment WORKDIR --index K`` that
uses the real WorkDir: it takes the state its segment starts from (``state_before`` refuses if
the segment before it has not finished), checks it is the one that segment saved, appends K
to ``order.txt`` and marks the segment done; as ``assemble WORKDIR`` it refuses to run before
every segment is done and appends ``assemble``. So a finished run proves coverage and order.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from rvm_render.jobs.checkpoint import WorkDir, plan_for
from rvm_render.jobs.farm.opencue import INDEX_TOKEN, opencue_job_spec, opencue_outline  # noqa: E402
from rvm_render.jobs.farm.openjd import (  # noqa: E402
    TEMPLATE_FILE,
    openjd_template,
    validate_openjd_template,
    write_openjd_template,
)
from rvm_render.jobs.segments import PlanMode, SegmentPolicy
from support.frames import exr_alphas

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


RVM_RENDER = Path(sys.executable).parent / "rvm-render"
EXPORT_FRAMES = (0, 23)  # bedroom.mp4: three segments of 8 frames


def _export(clips_dir: Path, out: Path, weights: Path, farm_format: str, *extra: str) -> int:
    from rvm_render.cli.main import main

    return main(["-q", "farm", "export", str(clips_dir / "bedroom.mp4"), "-o", str(out), "--format", farm_format,
                 "--frames", f"{EXPORT_FRAMES[0]}-{EXPORT_FRAMES[1]}", "--segment-frames", "8",
                 "--downsample-ratio", "0.25", "--formats", "exr", "--weights", str(weights), "--device", "cpu",
                 "--executable", str(RVM_RENDER), *extra])


def test_exported_openjd_job_renders_with_the_real_commands(
    clips_dir: Path, tmp_path: Path, tfjs_weights: Path
) -> None:
    """farm export -> openjd run: real `rvm-render segment` tasks chained, then `rvm-render assemble`."""
    import numpy as np
    import torch

    from rvm_render.engine import EngineOptions, open_matter
    from rvm_render.media.writers import OutputFormat
    from rvm_render.pipeline import RenderRequest, RenderSettings, render_clip

    out = tmp_path / "out"
    assert _export(clips_dir, out, tfjs_weights, "openjd", "--mode", "sequential") == 0
    work = WorkDir.load(out / ".rvm-work" / "bedroom")
    assert [s.depends_on for s in work.plan.segments] == [None, 0, 1]
    template_path = work.path / TEMPLATE_FILE
    template = json.loads(template_path.read_text())
    validate_openjd_template(template)
    assert [step["name"] for step in template["steps"]] == ["Wave-0", "Wave-1", "Wave-2", "Assemble"]
    # one torch thread in every task and in the reference: CPU sums depend on the thread count
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([str(OPENJD), "run", str(template_path)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert not work.path.exists(), "assemble removed the work dir"
    manifest = json.loads((out / "bedroom.rvm.json").read_text())
    assert (manifest["first_frame"], manifest["last_frame"]) == EXPORT_FRAMES
    frames = range(EXPORT_FRAMES[0], EXPORT_FRAMES[1] + 1)
    assert sorted(p.name for p in out.glob("bedroom_matte.*.exr")) == [f"bedroom_matte.{n:06d}.exr" for n in frames]
    single = tmp_path / "single"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        matter = open_matter(tfjs_weights, EngineOptions(device="cpu", downsample_ratio=0.25))
        render_clip(RenderRequest(clips_dir / "bedroom.mp4", single, *EXPORT_FRAMES),
                    RenderSettings(formats=(OutputFormat.EXR,)), matter)
    finally:
        torch.set_num_threads(threads)
    # sequential segments hand the state over between processes: identical to one pass
    pattern = "bedroom_matte.%06d.exr"
    np.testing.assert_array_equal(exr_alphas(out / pattern, frames), exr_alphas(single / pattern, frames))


def test_exported_opencue_job_has_segment_tasks_then_assemble(
    clips_dir: Path, tmp_path: Path, tfjs_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # PyOutline writes a session folder there
    out = tmp_path / "out"
    assert _export(clips_dir, out, tfjs_weights, "opencue", "--show", "demo", "--shot", "sh010") == 0
    work = WorkDir.load(out / ".rvm-work" / "bedroom")
    assert work.plan.mode == "parallel" and len(work.plan.segments) == 3
    spec = (work.path / "job.opencue.xml").read_text()
    root = ElementTree.fromstring(spec.split("?>", 1)[1].split(">", 1)[1])
    layers = root.findall("job/layers/layer")
    assert [layer.get("name") for layer in layers] == ["wave-0", "assemble"]
    assert shlex.split(layers[0].findtext("cmd", "")) == [str(RVM_RENDER), "segment", str(work.path), "--index",
                                                          INDEX_TOKEN]
    assert layers[0].findtext("range") == "0-2"
    assert shlex.split(layers[1].findtext("cmd", "")) == [str(RVM_RENDER), "assemble", str(work.path)]
    assert [(d.findtext("deplayer"), d.findtext("onlayer")) for d in root.findall("depends/depend")] == [
        ("assemble", "wave-0")]
