"""Real signals to a real ``rvm-render``, and output folders that cannot be written: nothing half-written stays.

SIGTERM is what farm managers, ``timeout`` and service managers send; the run must stop as cleanly
as on Ctrl-C (exit 143). A ``kill -9`` cannot be cleaned up after, so the next render of the same
deliverable sweeps what it left. An unwritable output folder is one line per input, never a traceback.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from support.cli import installed_rvm_render, matte, run_installed

RATIO = "0.25"


def _matte_args(clip: Path, out: Path, weights: Path, *flags: str) -> list[str]:
    return ["matte", str(clip), "-o", str(out), "--weights", str(weights), "--downsample-ratio", RATIO, *flags]


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(installed_rvm_render()), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def _wait_for_partials(process: subprocess.Popen[str], out: Path, frames: int) -> None:
    """Until the EXR partial folder holds ``frames`` frames and the movie partial has grown."""
    deadline = time.monotonic() + 240
    while True:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the render never got going"
        folders = [p for p in out.glob(".*.partial-*") if p.is_dir()]
        movies = [p for p in out.glob(".*.partial-*.mov") if p.is_file() and p.stat().st_size > 0]
        if folders and movies and len(list(folders[0].iterdir())) >= frames:
            return
        time.sleep(0.05)


def test_sigterm_stops_cleanly_with_exit_143(tmp_path: Path, clips_dir: Path, tfjs_weights: Path) -> None:
    out = tmp_path / "out"
    process = _start(_matte_args(clips_dir / "bedroom.mp4", out, tfjs_weights, "--formats", "prores4444,exr",
                                 "--segment-frames", "0"))  # fmt: skip
    _wait_for_partials(process, out, frames=4)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "SIGTERM" in errors[0], stderr
    assert "Traceback" not in stderr
    assert sorted(p.name for p in out.iterdir()) == [], "nothing half-written is left"


def test_a_killed_render_leaves_partials_that_the_next_render_sweeps(
    tmp_path: Path, clips_dir: Path, tfjs_weights: Path
) -> None:
    out = tmp_path / "out"
    clip = clips_dir / "bedroom.mp4"
    process = _start(_matte_args(clip, out, tfjs_weights, "--formats", "prores4444,exr", "--segment-frames", "0"))
    _wait_for_partials(process, out, frames=2)
    process.kill()
    process.communicate(timeout=60)
    left = sorted(p.name for p in out.iterdir())
    assert len(left) == 2 and all(".partial-" in name for name in left), left

    rerun = run_installed("-v", *_matte_args(clip, out, tfjs_weights, "--formats", "prores4444,exr", "--frames", "0-1"))
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "bedroom.rvm.json", "bedroom_matte.000000.exr", "bedroom_matte.000001.exr", "bedroom_matte.mov"
    ]  # fmt: skip
    assert rerun.stderr.count("left by an interrupted render") == 2


def test_partials_of_a_live_render_are_not_swept(tmp_path: Path, clips_dir: Path, tfjs_weights: Path) -> None:
    """Only temporaries whose process has ended go: a render still running elsewhere keeps its own."""
    live = tmp_path / f".bedroom_matte.partial-{os.getppid()}.mov"
    live.write_bytes(b"being written by a live process")
    assert matte([clips_dir / "bedroom.mp4"], tmp_path, tfjs_weights, "--formats", "prores4444",
                 "--frames", "0-1", "--downsample-ratio", RATIO) == 0  # fmt: skip
    assert live.read_bytes() == b"being written by a live process"


def _read_only_folder(path: Path) -> list[str]:
    """A command prefix under which ``path`` is a read-only file system (or a folder without write permission).

    As root, permissions do not stop writes, so a private mount namespace mounts a read-only tmpfs
    there; otherwise ``chmod 555`` does it.
    """
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        return []
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to make a read-only folder as root"
    return [unshare, "--mount", "--", "sh", "-c", f'mount -t tmpfs -o ro rvm-test "{path}" && exec "$0" "$@"']


@pytest.mark.parametrize("formats", ["prores4444,exr", "alpha", "png", "comp"])
@pytest.mark.parametrize("where", ["folder", "subfolder"])
def test_read_only_output_folder_is_one_line_per_input(
    tmp_path: Path, clips_dir: Path, tfjs_weights: Path, formats: str, where: str
) -> None:
    folder = tmp_path / "read-only"
    prefix = _read_only_folder(folder)
    out = folder if where == "folder" else folder / "mattes"
    inputs = [clips_dir / "bedroom.mp4", clips_dir / "01_dog.mp4"]
    command = [*prefix, str(installed_rvm_render()), "-q", "matte", *map(str, inputs), "-o", str(out),
               "--weights", str(tfjs_weights), "--formats", formats, "--frames", "0-1",
               "--downsample-ratio", RATIO]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2, result.stderr  # one per input: the second input was still tried
    assert all("cannot write" in line and str(folder) in line and "-o" in line for line in errors), errors


@pytest.mark.parametrize("segment_frames", ["0", "1"])
def test_output_path_through_a_file_is_one_line_per_input(
    tmp_path: Path, clips_dir: Path, tfjs_weights: Path, capsys: pytest.CaptureFixture[str], segment_frames: str
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should go\n")
    inputs = [clips_dir / "bedroom.mp4", clips_dir / "01_dog.mp4"]
    code = matte(inputs, blocker / "mattes", tfjs_weights, "--formats", "exr", "--frames", "0-1",
                 "--segment-frames", segment_frames)  # fmt: skip
    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all(e.startswith("error: cannot write") and "Not a directory" in e for e in errors)
    assert blocker.read_text() == "a file where the output folder should go\n"
