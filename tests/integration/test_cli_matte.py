"""`rvm-render matte` end to end on real clips: deliverables, manifest, refusals, failures."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import OpenEXR
import pytest
import torch

from rvm_render.cli.main import main
from rvm_render.engine import load_model
from rvm_render.media.probe import probe
from rvm_render.media.reader import open_reader
from support.cli import matte, run_installed
from support.frames import planes_of

ALL_FORMATS = "prores4444,exr,alpha,comp,png"
RATIO = 0.375


@pytest.fixture(scope="module")
def juggle_render(tmp_path_factory: pytest.TempPathFactory, clips_dir: Path, tfjs_weights: Path) -> Path:
    """Frames 0-11 of the juggling clip in every format."""
    out = tmp_path_factory.mktemp("juggle")
    code = matte(
        [clips_dir / "05_default_juggle.mp4"],
        out,
        tfjs_weights,
        "--formats",
        ALL_FORMATS,
        "--frames",
        "0-11",
        "--downsample-ratio",
        str(RATIO),
    )
    assert code == 0
    return out


def _manifest(out: Path, stem: str) -> dict:
    return json.loads((out / f"{stem}.rvm.json").read_text())


def _exr_channels(path: Path) -> dict[str, np.ndarray]:
    with OpenEXR.File(str(path), separate_channels=True) as exr:
        return {name: np.asarray(ch.pixels) for name, ch in exr.channels().items()}


def _reference_alpha(clip: Path, weights: Path, frames: int) -> np.ndarray:
    """Alpha by the official call contract, frame by frame: the second computation."""
    model = load_model(weights, device="cpu", precision="fp32")
    rec: list[torch.Tensor | None] = [None] * 4
    alphas = []
    info = probe(clip)
    with open_reader(info, 0, frames - 1) as reader, torch.inference_mode():
        for frame in reader:
            src = torch.from_numpy(frame.rgb).permute(2, 0, 1)[None].float() / 255
            _, pha, *rec = model(src, *rec, downsample_ratio=RATIO)
            alphas.append(pha[0, 0].numpy())
    return np.stack(alphas)


def test_manifest_lists_every_deliverable(juggle_render: Path, clips_dir: Path) -> None:
    manifest = _manifest(juggle_render, "05_default_juggle")
    assert manifest["input"] == str(clips_dir / "05_default_juggle.mp4")
    assert (manifest["frames"], manifest["fps"]) == (12, "24/1")
    assert (manifest["width"], manifest["height"]) == (1280, 720)
    assert manifest["variant"] == "mobilenetv3"
    assert len(manifest["weights_sha256"]) == 64
    assert manifest["downsample_ratio"] == RATIO
    assert sorted(o["format"] for o in manifest["outputs"]) == sorted(ALL_FORMATS.split(","))
    for output in manifest["outputs"]:
        assert (output["first_frame"], output["last_frame"]) == (0, 11)
        path = Path(output["path"])
        if "%" in path.name:
            for index in range(12):
                assert (path.parent / (path.name % index)).is_file()
        else:
            assert path.is_file()
    leftovers = [p.name for p in juggle_render.rglob("*") if "partial" in p.name or p.name.startswith(".")]
    assert leftovers == []


def test_deliverables_carry_the_enginematte(juggle_render: Path, clips_dir: Path, tfjs_weights: Path) -> None:
    expected = _reference_alpha(clips_dir / "05_default_juggle.mp4", tfjs_weights, 12)
    outputs = {o["format"]: Path(o["path"]) for o in _manifest(juggle_render, "05_default_juggle")["outputs"]}

    exr_alpha = np.stack([_exr_channels(outputs["exr"].parent / (outputs["exr"].name % i))["A"] for i in range(12)])
    np.testing.assert_allclose(exr_alpha.astype(np.float32), expected, atol=1e-3)

    with av.open(str(outputs["prores4444"])) as container:
        alpha = [planes_of(f.reformat(format="yuva444p10le"))[3] for f in container.decode(video=0)]
    prores_alpha = np.stack(alpha).astype(np.float32) / 1023
    assert prores_alpha.shape == expected.shape
    assert np.abs(prores_alpha - expected).max() <= 1.5 / 1023


def test_refuses_to_replace_a_render_made_otherwise_and_keeps_existing_files(
    juggle_render: Path, clips_dir: Path, tfjs_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {p: p.stat().st_mtime_ns for p in juggle_render.rglob("*") if p.is_file()}
    code = matte([clips_dir / "05_default_juggle.mp4"], juggle_render, tfjs_weights, "--formats", ALL_FORMATS,
                 "--frames", "0-11", "--background", "blue")  # fmt: skip
    assert code != 0
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "comp background" in error and "--overwrite" in error
    assert {p: p.stat().st_mtime_ns for p in juggle_render.rglob("*") if p.is_file()} == before


def test_audio_and_ntsc_rate_survive(tmp_path: Path, clips_dir: Path, tfjs_weights: Path) -> None:
    clip = clips_dir / "01_dog.mp4"
    code = matte(
        [clip],
        tmp_path,
        tfjs_weights,
        "--formats",
        "prores4444,alpha,comp",
        "--frames",
        "0-14",
        "--downsample-ratio",
        "0.25",
    )
    assert code == 0
    manifest = _manifest(tmp_path, "01_dog")
    assert manifest["fps"] == "30000/1001"
    with av.open(str(clip)) as source:
        source_audio = source.streams.audio[0].codec_context.name
    for output in manifest["outputs"]:
        with av.open(output["path"]) as container:
            video = container.streams.video[0]
            assert video.average_rate == Fraction(30000, 1001)
            assert sum(1 for _ in container.decode(video=0)) == 15
            assert [s.codec_context.name for s in container.streams.audio] == [source_audio]


def test_bad_inputs_fail_one_line_and_good_ones_still_render(
    tmp_path: Path, clips_dir: Path, tfjs_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = clips_dir / "bedroom.mp4"
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size * 2 // 5])
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(np.random.default_rng(7).integers(0, 256, 200_000, dtype=np.uint8)))
    text = tmp_path / "notes.mov"
    text.write_text("not a video\n")
    good = tmp_path / "good.mp4"
    shutil.copy(source, good)
    out = tmp_path / "out"

    code = matte(
        [truncated, corrupt, text, tmp_path / "missing.mp4", good],
        out,
        tfjs_weights,
        "--formats",
        "alpha",
        "--frames",
        "0-3",
    )
    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    for name in ("truncated.mp4", "corrupt.mp4", "notes.mov", "missing.mp4"):
        assert sum(name in line for line in errors) == 1, (name, errors)
    assert (out / "good.rvm.json").is_file()
    assert not (out / "truncated.rvm.json").exists()


def test_truncated_clip_rendered_whole_fails_and_leaves_nothing(
    tmp_path: Path, clips_dir: Path, tfjs_weights: Path
) -> None:
    source = clips_dir / "bedroom.mp4"
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size * 3 // 5])
    out = tmp_path / "out"
    code = matte([truncated], out, tfjs_weights, "--formats", "alpha,exr", "--downsample-ratio", "0.25")
    assert code == 1
    assert not out.exists() or list(out.iterdir()) == []


def test_interrupt_leaves_no_partial_outputs(tmp_path: Path, clips_dir: Path, tfjs_weights: Path) -> None:
    from rvm_render.engine import EngineOptions, open_matter
    from rvm_render.media.writers import OutputFormat
    from rvm_render.pipeline import RenderRequest, RenderSettings, render_clip

    matter = open_matter(tfjs_weights, EngineOptions(device="cpu", downsample_ratio=0.25))
    settings = RenderSettings(formats=(OutputFormat.PRORES4444, OutputFormat.EXR, OutputFormat.PNG))

    def interrupt_midway(event) -> None:
        if event.frames_done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_clip(RenderRequest(clips_dir / "bedroom.mp4", tmp_path), settings, matter, interrupt_midway)
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


def test_missing_weights_is_one_clear_line(
    tmp_path: Path, clips_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RVM_RENDER_WEIGHTS", raising=False)
    monkeypatch.delenv("RVM_RENDER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    code = main(["matte", str(clips_dir / "bedroom.mp4"), "-o", str(tmp_path / "out"), "--weights", "rvm_resnet50.pth"])
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "\n" not in error
    assert "rvm_resnet50.pth" in error and "--weights" in error and "RVM_RENDER_WEIGHTS" in error
    assert not (tmp_path / "out").exists()


def test_unknown_format_suggests_the_right_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["matte", "x.mp4", "-o", str(tmp_path), "--formats", "prores"])
    assert code == 2
    assert "did you mean 'prores4444'" in capsys.readouterr().err


def test_installed_command_explains_itself() -> None:
    result = run_installed("matte", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for word in ("--formats", "prores4444", "--downsample-ratio", "--overwrite", "--frames", "RVM_RENDER_WEIGHTS",
                 "rvm-render weights", "beside each input"):  # fmt: skip
        assert word in text
