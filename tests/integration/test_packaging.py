"""Out of the box: a wheel built from the repo carries the default weights and mattes from a clean venv.

The wheel is built with ``pip wheel`` from a copy of the sources, installed with its dependencies
into a new virtual environment (torch pinned to the version running these tests: no download),
and its ``rvm-render`` runs with nothing configured: no ``--weights``, no environment, no
config file, an empty cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from rvm_render.engine.weights import CONFIG_ENV, WEIGHTS_ENV, read_weights
from support.cli import matte

REPO = Path(__file__).resolve().parents[2]
WEIGHT_FILES = ("model.json", "group1-shard1of1.bin", "PROVENANCE.md")


def _run(command: list[str | Path], *, cwd: Path, env: dict[str, str], timeout_s: float = 600) -> str:
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s
    )
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel`` of a copy of the project's sources (the checkout itself stays untouched)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("rvm_render", "integrations"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", work / "dist", source],
         cwd=work, env=os.environ.copy())  # fmt: skip
    (built,) = (work / "dist").glob("rvm_render-*.whl")
    return built


@pytest.fixture(scope="module")
def clean_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which no weights are configured anywhere (and nothing of the test run leaks in)."""
    home = tmp_path_factory.mktemp("home")
    env = {key: value for key, value in os.environ.items() if key not in (WEIGHTS_ENV, CONFIG_ENV, "PYTHONPATH")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    return env


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path, clean_env: dict[str, str]) -> Path:
    """A new virtual environment with only the wheel and its dependencies installed."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    base_python = getattr(sys, "_base_executable", sys.executable)
    _run([base_python, "-m", "venv", venv], cwd=venv.parent, env=clean_env)
    torch_pin = f"torch=={torch.__version__.split('+')[0]}"  # the build on this machine; never a download
    _run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel, torch_pin], cwd=venv.parent, env=clean_env)
    return venv


def test_wheel_carries_the_published_weights(wheel: Path, tfjs_weights: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in WEIGHT_FILES:
            assert f"rvm_render/engine/default_weights/rvm_mobilenetv3_tfjs_uint8/{name}" in names, name
        for name in WEIGHT_FILES[:2]:
            packed = archive.read(f"rvm_render/engine/default_weights/rvm_mobilenetv3_tfjs_uint8/{name}")
            assert packed == (tfjs_weights / name).read_bytes(), name


def test_wheel_carries_every_package_and_the_checkouts_plugin_files(wheel: Path) -> None:
    """The plug-ins exist once, in the checkout's integrations/; the wheel's copy is the same files, byte for byte."""
    plugins = {path.relative_to(REPO / "integrations").as_posix(): path.read_bytes()
               for path in (REPO / "integrations").rglob("*") if path.is_file() and "__pycache__" not in path.parts}
    assert {"davinci/RVM Render Matte.py", "nuke/menu.py", "deadline/RVMRender/RVMRender.py"} <= set(plugins)
    packages = {path.parent.relative_to(REPO).as_posix() for path in (REPO / "rvm_render").rglob("__init__.py")}
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        packed = {name.removeprefix("rvm_render/integrations/plugins/"): archive.read(name)
                  for name in names if name.startswith("rvm_render/integrations/plugins/")}
    assert packed == plugins
    assert {f"{package}/__init__.py" for package in packages} <= names
    assert not any(name.startswith("rvm_render/integrations/nuke/") for name in names)  # no second copy


def test_install_writes_exactly_the_plugin_files(tmp_path: Path) -> None:
    """``install nuke``/``install resolve``: the host's files of integrations/ (Resolve's script with its support
    folder filled in), the vendored client and settings loader, nothing else."""
    from rvm_render.integrations.install import install, plugin_files

    vendored = {"rvm_render/__init__.py", "rvm_render/api/__init__.py", "rvm_render/api/client.py",
                "rvm_render/integrations/__init__.py", "rvm_render/integrations/plugin_settings.py"}  # fmt: skip
    nuke = install("nuke", tmp_path / "nuke").entry
    written = {path.relative_to(nuke).as_posix(): path for path in nuke.rglob("*") if path.is_file()}
    sources = plugin_files("nuke")
    assert set(written) == set(sources) | vendored
    assert all(written[name].read_bytes() == path.read_bytes() for name, path in sources.items())

    resolve = install("resolve", tmp_path / "Scripts")
    written = {path.relative_to(resolve.support_dir).as_posix(): path
               for path in resolve.support_dir.rglob("*") if path.is_file()}  # fmt: skip
    sources = plugin_files("resolve")
    script = sources.pop("RVM Render Matte.py").read_text()
    assert set(written) == set(sources) | vendored
    assert all(written[name].read_bytes() == path.read_bytes() for name, path in sources.items())
    support_line = f"SUPPORT_DIR = {str(resolve.support_dir)!r}"
    assert resolve.entry.read_text() == script.replace("SUPPORT_DIR = None", support_line)


def test_clean_install_mattes_with_no_set_up(
    clean_venv: Path, clean_env: dict[str, str], tmp_path: Path, clips_dir: Path, tfjs_weights: Path
) -> None:
    rvm_render = clean_venv / "bin" / "rvm-render"
    site = _run([clean_venv / "bin" / "python", "-c", "import rvm_render; print(rvm_render.__file__)"],
                cwd=tmp_path, env=clean_env)  # fmt: skip
    assert Path(site.strip()).is_relative_to(clean_venv), "rvm_render comes from the wheel, not the checkout"

    report = _run([rvm_render, "weights"], cwd=tmp_path, env=clean_env)
    used = next(line for line in report.splitlines() if line.endswith("<- used"))
    assert "shipped with rvm_render" in used and str(clean_venv) in used

    clip = tmp_path / "shots" / "take.mp4"
    clip.parent.mkdir()
    shutil.copy(clips_dir / "bedroom.mp4", clip)
    _run([rvm_render, "-q", "matte", clip, "--frames", "0-2", "--formats", "exr,prores4444",
          "--downsample-ratio", "0.25"], cwd=tmp_path, env=clean_env)  # fmt: skip
    manifest = json.loads((clip.parent / "take.rvm.json").read_text())
    assert manifest["weights_sha256"] == read_weights(tfjs_weights).sha256
    assert sorted(p.name for p in clip.parent.iterdir()) == [
        "take.mp4", "take.rvm.json", "take_matte.000000.exr", "take_matte.000001.exr", "take_matte.000002.exr",
        "take_matte.mov",
    ]  # fmt: skip


def test_matte_without_outdir_writes_beside_each_input_keeps_what_is_current_and_never_overwrites(
    tmp_path: Path, clips_dir: Path, tfjs_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clips = [tmp_path / "day1" / "take.mp4", tmp_path / "day2" / "take.mp4"]  # same name, other folders: no clash
    for clip in clips:
        clip.parent.mkdir()
        shutil.copy(clips_dir / "bedroom.mp4", clip)
    flags = ("--weights", str(tfjs_weights), "--formats", "exr,alpha", "--frames", "0-1", "--downsample-ratio", "0.25")
    from rvm_render.cli.main import main

    assert main(["-q", "matte", *map(str, clips), *flags]) == 0
    for clip in clips:
        assert sorted(p.name for p in clip.parent.iterdir()) == [
            "take.mp4", "take.rvm.json", "take_alpha.mov", "take_matte.000000.exr", "take_matte.000001.exr"
        ]  # fmt: skip
    before = {p: p.stat().st_mtime_ns for clip in clips for p in clip.parent.iterdir()}
    capsys.readouterr()
    assert main(["matte", str(clips[0]), *flags]) == 0  # run again: up to date, nothing rendered or touched
    assert "up to date: kept from an earlier run" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for clip in clips for p in clip.parent.iterdir()} == before
    assert main(["-q", "matte", str(clips[0]), *flags[:-1], "0.5"]) == 1  # other settings: refused, nothing touched
    err = capsys.readouterr().err
    assert "other weights or another downsample ratio" in err and "--overwrite" in err, err
    assert main(["-q", "matte", str(clips[0]), *flags, "--warmup", "2"]) == 1
    assert "another warm start" in capsys.readouterr().err
    (clips[1].parent / "take_matte.000001.exr").unlink()  # a frame lost: no longer whole
    assert main(["-q", "matte", str(clips[1]), *flags]) == 1
    assert "missing or truncated" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for clip in clips for p in clip.parent.iterdir() if p.exists()} == {
        p: t for p, t in before.items() if p.exists()
    }
    assert matte([clips[0]], clips[0].parent, tfjs_weights, *flags[2:], "--overwrite") == 0
