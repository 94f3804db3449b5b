"""Running ``rvm-render`` from tests: in process (exit code + stderr via capsys) or as the installed command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rvm_render.cli.main import main

__all__ = ["matte", "installed_rvm_render", "run_installed"]


def matte(inputs: list[Path], out: Path, weights: Path, *flags: str) -> int:
    """``rvm-render -q matte INPUTS -o OUT --weights WEIGHTS FLAGS`` in process; its exit code."""
    return main(["-q", "matte", *map(str, inputs), "-o", str(out), "--weights", str(weights), *flags])


def installed_rvm_render() -> Path:
    """The ``rvm-render`` console script of the environment running the tests."""
    return Path(sys.executable).parent / "rvm-render"


def run_installed(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the installed ``rvm-render ARGS`` to completion; output captured as text."""
    return subprocess.run(
        [str(installed_rvm_render()), *args], capture_output=True, text=True, env=os.environ.copy(), timeout=timeout_s
    )
