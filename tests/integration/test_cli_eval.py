"""``rvm-render eval``: real mattes rendered by ``rvm-render matte``, read back from every deliverable, and scored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
from PIL import Image

from rvm_render.cli.main import main
from rvm_render.quality import matte_frames, open_matte
from support.cli import matte, run_installed
from support.frames import short_clip

FRAMES = 8


@pytest.fixture(scope="module")
def rendered(clips_dir: Path, tfjs_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bedroom.mp4 frames 0-7 matted at ratio 0.25 into EXR, the grey alpha movie and ProRes 4444."""
    out = tmp_path_factory.mktemp("eval")
    code = matte([clips_dir / "bedroom.mp4"], out, tfjs_weights, "--formats", "exr,alpha,prores4444",
                 "--frames", f"0-{FRAMES - 1}", "--downsample-ratio", "0.25")
    assert code == 0
    return out


def _eval_json(capsys: pytest.CaptureFixture[str], *args: str | Path) -> dict:
    assert main(["-q", "eval", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_matte_scored_against_itself_is_zero(rendered: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "eval", str(rendered / "bedroom.rvm.json"), str(rendered / "bedroom_matte.%06d.exr")]) == 0
    table = capsys.readouterr().out
    assert "first 8 frames" in table and "dtSSD" in table
    row = next(line for line in table.splitlines() if line.startswith("bedroom"))
    assert row.split()[1:] == ["8"] + ["0.000"] * 10
    document = _eval_json(capsys, rendered / "bedroom.rvm.json", rendered / "bedroom.rvm.json")
    assert document["clips"][0]["frames"] == FRAMES and document["clips"][0]["first"]["frames"] == FRAMES
    assert set(document["mean"]["whole"]) == {"MAD", "MSE", "Grad", "Conn", "dtSSD"}
    assert all(value == 0 for value in [*document["mean"]["whole"].values(), *document["mean"]["first"].values()])


def test_every_deliverable_reads_the_same_matte(rendered: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exr = np.stack(list(matte_frames(open_matte(rendered / "bedroom.rvm.json"))))
    assert exr.shape == (FRAMES, 540, 960) and exr.dtype == np.float32
    assert 0.05 < exr.mean() < 0.95 and exr.min() == 0 and exr.max() == 1  # a real matte, not a blank
    prores = np.stack(list(matte_frames(open_matte(rendered / "bedroom_matte.mov"))))
    grey = np.stack(list(matte_frames(open_matte(rendered / "bedroom_alpha.mov"))))
    # ProRes 4444 alpha is lossless 10-bit (decoded as 12-bit): within a 10-bit step of the half-float EXR
    assert np.abs(prores - exr).max() <= 1 / 1023 + 1e-3
    # the grey matte movie: 10-bit limited-range luma (876 steps) through ProRes 422 HQ, which is lossy
    assert np.abs(grey - exr).max() < 1e-2 and np.abs(grey - exr).mean() < 1e-3
    scores = _eval_json(capsys, rendered / "bedroom_alpha.mov", rendered / "bedroom.rvm.json")
    assert 0 < scores["mean"]["whole"]["MAD"] < 1.0  # x1e3: below 1e-3 mean |diff|


@pytest.mark.parametrize("form", ["png8_grey", "png16_grey", "png_rgba", "exr_a", "exr_y"])
def test_stills_read_their_matte(shared_dir: Path, tmp_path: Path, form: str) -> None:
    truth = np.asarray(Image.open(shared_dir / "testdata" / "gt" / "alpha" / "8cc6d66_0.png"), dtype=np.float32) / 255
    path = tmp_path / ("still.exr" if form.startswith("exr") else "still.png")
    if form == "png8_grey":
        Image.fromarray(np.rint(truth * 255).astype(np.uint8)).save(path)
    elif form == "png16_grey":
        Image.fromarray(np.rint(truth * 65535).astype(np.uint16)).save(path)
    elif form == "png_rgba":
        rgba = np.zeros((*truth.shape, 4), dtype=np.uint8)
        rgba[..., 0] = 200  # colour is not the matte
        rgba[..., 3] = np.rint(truth * 255)
        Image.fromarray(rgba, "RGBA").save(path)
    else:
        channel = "A" if form == "exr_a" else "Y"
        channels = {channel: truth.astype(np.float16)}
        if form == "exr_a":
            channels["R"] = channels["G"] = channels["B"] = np.full_like(truth, 0.8, dtype=np.float16)
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, channels).write(str(path))
    clip = open_matte(path)
    (alpha,) = list(matte_frames(clip))
    assert (clip.frames, clip.width, clip.height) == (1, 320, 320)
    assert np.abs(alpha - truth).max() <= 5e-4  # half float near 1: 2^-11


def test_folders_pair_clips_by_name(rendered: Path, shared_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    truth = tmp_path / "truth"
    truth.mkdir()
    shutil.copy(rendered / "bedroom_matte.mov", truth / "bedroom.mov")
    shutil.copy(rendered / "bedroom_alpha.mov", truth / "unrendered.mov")  # GT without a prediction: skipped
    document = _eval_json(capsys, rendered, truth)
    assert [clip["name"] for clip in document["clips"]] == ["bedroom"]
    assert document["clips"][0]["gt"] == str(truth / "bedroom.mov")
    # the Composition-1k stills: numbered names with gaps (fd5c3ac_0, _7, _8) are stills, one clip each
    stills = _eval_json(capsys, shared_dir / "testdata" / "gt" / "alpha", shared_dir / "testdata" / "gt" / "alpha")
    assert len(stills["clips"]) == 12 and {c["frames"] for c in stills["clips"]} == {1}
    assert stills["mean"]["whole"]["MAD"] == 0


def _grey_sequence(folder: Path, frames: int, size: int) -> Path:
    folder.mkdir()
    for index in range(frames):
        Image.fromarray(np.full((size, size), 128, np.uint8)).save(folder / f"grey.{index:04d}.png")
    return folder / "grey.%04d.png"


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("missing", 1, "no such file; check the path"),
        ("frames", 1, "8 frames against 1; score mattes of the same frames"),
        ("size", 1, "960x540 against 16x16; score mattes of the same size"),
        ("folder", 2, "is a folder but"),
        ("colour", 1, "is not a grey matte (its chroma is not neutral)"),
        ("unpaired", 1, "no ground truth in"),
    ],
)
def test_errors_are_one_line(
    rendered: Path, clips_dir: Path, shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    case: str, code: int, message: str,
) -> None:
    manifest = rendered / "bedroom.rvm.json"
    pred, gt = {
        "missing": lambda: (manifest, tmp_path / "nope.mov"),
        "frames": lambda: (manifest, shared_dir / "testdata" / "gt" / "alpha" / "8cc6d66_0.png"),
        "size": lambda: (manifest, _grey_sequence(tmp_path / "grey", FRAMES, 16)),
        "folder": lambda: (rendered, manifest),
        "colour": lambda: (short_clip(clips_dir / "bedroom.mp4", tmp_path / "picture.mp4", FRAMES), manifest),
        "unpaired": lambda: (rendered, tmp_path),
    }[case]()
    assert main(["eval", str(pred), str(gt)]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    if case in ("frames", "size"):
        assert str(pred) in err and str(gt) in err


def test_installed_command(rendered: Path) -> None:
    done = run_installed("eval", str(rendered / "bedroom_matte.mov"), str(rendered / "bedroom.rvm.json"), "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["scaling"] == {"MAD": "x1e3", "MSE": "x1e3", "Grad": "/1e3", "Conn": "/1e3", "dtSSD": "x1e2"}
    assert 0 < document["mean"]["whole"]["MAD"] < 1.0
