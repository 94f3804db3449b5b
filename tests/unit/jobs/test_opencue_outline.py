"""OpenCue outline via PyOutline, serialized offline: layers = waves, frames = segment indices."""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from rvm_render.jobs.checkpoint import InputFingerprint, JobPlan, PlanFingerprint
from rvm_render.jobs.farm.opencue import (
    ASSEMBLE_LAYER,
    INDEX_TOKEN,
    assemble_command,
    opencue_job_spec,
    opencue_outline,
    segment_command,
)
from rvm_render.jobs.farm.openjd import segment_waves
from rvm_render.jobs.segments import SegmentPolicy, plan_segments

FINGERPRINT = PlanFingerprint(InputFingerprint("/media/shot 010.mov", 10, 20, "0" * 64), "1" * 64, "2" * 64)


@pytest.fixture(autouse=True)
def session_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PyOutline writes a session folder under ~/.opencue when it serializes."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _plan() -> JobPlan:
    policy = SegmentPolicy(max_frames=12)
    return JobPlan(FINGERPRINT, 100, policy, "sequential", tuple(plan_segments(100, (30, 60), policy)), (30, 60))


def _frames(range_text: str) -> list[int]:
    values: list[int] = []
    for part in range_text.split(","):
        first, _, last = part.partition("-")
        values += range(int(first), int(last or first) + 1)
    return values


def test_spec_has_a_layer_per_wave_chained_layer_on_layer() -> None:
    plan = _plan()
    spec = opencue_job_spec(opencue_outline(plan, "/farm/work dir", show="testing", shot="sh010", user="render"))
    root = ElementTree.fromstring(spec.split("?>", 1)[1].split(">", 1)[1])  # drop <?xml?> and DOCTYPE
    job = root.find("job")
    assert job is not None and job.get("name") == "rvm-render-shot_010"
    *layers, final = job.findall("layers/layer")
    waves = segment_waves(plan.segments)
    assert [layer.get("name") for layer in layers] == [f"wave-{n}" for n in range(len(waves))]
    assert final.get("name") == ASSEMBLE_LAYER
    assert (final.findtext("range"), final.findtext("chunk")) == ("0", "1")
    assert shlex.split(final.findtext("cmd", "")) == ["rvm-render", "assemble", "/farm/work dir"]
    for layer, wave in zip(layers, waves, strict=True):
        assert _frames(layer.findtext("range", "")) == wave
        assert layer.findtext("chunk") == "1"
        command = shlex.split(layer.findtext("cmd", ""))
        assert command == ["rvm-render", "segment", "/farm/work dir", "--index", INDEX_TOKEN]
    depends = [(d.findtext("deplayer"), d.findtext("onlayer"), d.get("type")) for d in root.findall("depends/depend")]
    assert depends == [(f"wave-{n}", f"wave-{n - 1}", "LAYER_ON_LAYER") for n in range(1, len(waves))] + [
        (ASSEMBLE_LAYER, f"wave-{n}", "LAYER_ON_LAYER") for n in range(len(waves))]


def test_assemble_layer_can_be_left_out() -> None:
    spec = opencue_job_spec(opencue_outline(_plan(), "/w", assemble=False))
    assert ASSEMBLE_LAYER not in spec and "assemble" not in spec


def test_gpus_and_service_reach_the_layers() -> None:
    ol = opencue_outline(_plan(), "/w", gpus_per_frame=1, service="rvm", extra_args=["--device", "cuda"])
    spec = opencue_job_spec(ol)
    assert "<gpus>1</gpus>" in spec and "<service>rvm</service>" in spec
    assert f"--index {INDEX_TOKEN} --device cuda" in spec


def test_assemble_command_quotes_paths() -> None:
    assert shlex.split(assemble_command("/a b/work", "/opt/x y/rvm-render")) == [
        "/opt/x y/rvm-render", "assemble", "/a b/work"]


def test_segment_command_quotes_paths_not_the_token() -> None:
    command = segment_command("/a b/work", "/opt/rvm render/bin/rvm-render")
    assert command.endswith(f"--index {INDEX_TOKEN}")
    assert shlex.split(command.replace(INDEX_TOKEN, "7")) == [
        "/opt/rvm render/bin/rvm-render", "segment", "/a b/work", "--index", "7"]
