"""The light commands start at once: ``--help``, ``status``, ``submit``, ``cancel``, ``weights`` and every
command's ``--help`` import neither torch, PyAV nor FastAPI (each checked in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.daemon import TOKEN, free_port

HEAVY = ("torch", "av", "fastapi", "uvicorn")
COMMANDS = ("matte", "timeline", "segment", "assemble", "farm", "weights", "eval", "daemon", "submit", "status",
            "cancel")  # fmt: skip

_PROBE = """
import json, sys
from rvm_render.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "heavy": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)}))
""".replace("HEAVY", repr(HEAVY))


def _run(*argv: str, cwd: Path) -> tuple[int, list[str], str]:
    """``rvm-render ARGV`` in a fresh interpreter: (exit code, heavy modules it imported, stderr)."""
    env = {**os.environ, "RVM_RENDER_URL": f"http://127.0.0.1:{free_port()}", "RVM_RENDER_TOKEN": TOKEN}
    done = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=120)  # fmt: skip
    report = json.loads(done.stdout.splitlines()[-1])
    return report["code"], report["heavy"], done.stderr


@pytest.mark.parametrize("argv", [("--help",), *((command, "--help") for command in COMMANDS), ("farm", "export",
                                                                                                 "--help")])
def test_help_imports_nothing_heavy(argv: tuple[str, ...], tmp_path: Path) -> None:
    code, heavy, _ = _run(*argv, cwd=tmp_path)
    assert code == 0 and heavy == [], f"rvm-render {' '.join(argv)} imported {heavy}"


@pytest.mark.parametrize("argv", [("status",), ("status", "7", "--json"), ("cancel", "7"),
                                  ("submit", "take.mov", "--frames", "1-5", "--formats", "exr")])  # fmt: skip
def test_daemon_commands_import_nothing_heavy(argv: tuple[str, ...], tmp_path: Path) -> None:
    code, heavy, stderr = _run(*argv, cwd=tmp_path)
    assert code == 1 and "cannot reach the rvm-render daemon" in stderr, stderr  # ran up to the request itself
    assert heavy == [], f"rvm-render {' '.join(argv)} imported {heavy}"


def test_weights_identifies_the_shipped_weights_without_torch(tmp_path: Path) -> None:
    from rvm_render.engine.weights import packaged_weights_dir, read_weights

    env_free = tmp_path / "empty"
    env_free.mkdir()
    code, heavy, _ = _run("weights", cwd=env_free)
    assert code == 0 and heavy == [], heavy
    report = subprocess.run([sys.executable, "-m", "rvm_render.cli.main", "weights"], capture_output=True, text=True,
                            cwd=env_free, timeout=120).stdout  # fmt: skip
    assert read_weights(packaged_weights_dir()).sha256 in report and "mobilenetv3" in report


def test_a_render_command_still_loads_the_engine(tmp_path: Path) -> None:
    code, heavy, stderr = _run("matte", str(tmp_path / "missing.mov"), "-o", str(tmp_path), cwd=tmp_path)
    assert code == 1 and "missing.mov" in stderr
    assert "torch" in heavy and "av" in heavy
