"""A real ``rvm-render daemon`` process on a temp config."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from rvm_render.api.client import ApiError, RvmRenderClient
from support.cli import installed_rvm_render

__all__ = ["TOKEN", "free_port", "write_config", "DaemonProcess", "running_daemon", "wait_for", "raw_request"]

TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(folder: Path, *, port: int, segment_frames: int = 8, settle_seconds: float = 1.0) -> Path:
    """A node config under ``folder``: media/ is the only media root, with incoming/, urgent/ (priority 10)
    and timelines/ watched, mattes into media/output/."""
    config = {
        "state_dir": "state",
        "media_roots": ["media"],
        "settle_seconds": settle_seconds,
        "device": "cpu",
        "api": {"host": "127.0.0.1", "port": port, "token": TOKEN},
        "preset": {"formats": ["exr"], "downsample_ratio": 0.25, "segment_frames": segment_frames},
        "watch": [
            {"path": "media/incoming", "kind": "clip", "output": "media/output"},
            {"path": "media/urgent", "kind": "clip", "output": "media/output", "priority": 10},
            {"path": "media/timelines", "kind": "timeline", "output": "media/output", "formats": ["prores4444"],
             "handles": 0},
        ],
    }  # fmt: skip
    (folder / "media").mkdir(parents=True, exist_ok=True)
    path = folder / "node.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def wait_for(condition: Any, timeout_s: float, what: str, poll_s: float = 0.2) -> Any:
    """Poll ``condition()`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


class DaemonProcess:
    """``rvm-render daemon --config CONFIG`` as a child process, with a client for its API.

    ``prefix``: a command the daemon runs under (``unshare -m sh -c ...``), which ends by exec-ing it.
    """

    def __init__(self, config: Path, port: int, prefix: Sequence[str] = ()) -> None:
        self.config = config
        self.client = RvmRenderClient(f"http://127.0.0.1:{port}", TOKEN, timeout_s=10)
        self.log = config.parent / f"daemon-{port}.stderr"
        with self.log.open("ab") as stderr:
            self.process = subprocess.Popen(
                [*prefix, str(installed_rvm_render()), "daemon", "--config", str(config)],
                stdout=subprocess.DEVNULL, stderr=stderr, env=os.environ.copy(), start_new_session=True,
            )  # fmt: skip
        wait_for(self._up, 180, "the daemon to answer /health")

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the daemon exited with {self.process.returncode}:\n{self.log.read_text()}")
        try:
            return self.client.health()["status"] == "ok"
        except ApiError:
            return False

    @property
    def media(self) -> Path:
        """The node's only media root (:func:`write_config`)."""
        return self.config.parent / "media"

    def job(self, job_id: int) -> dict[str, Any]:
        return self.client.job(job_id)

    def jobs_for(self, name: str) -> list[dict[str, Any]]:
        """The jobs whose input file is called ``name``."""
        return [job for job in self.jobs() if Path(job["input"]).name == name]

    def jobs(self) -> list[dict[str, Any]]:
        return self.client.jobs()

    def wait_done(self, job_id: int, timeout_s: float = 240) -> dict[str, Any]:
        job = self.client.wait(job_id, poll_s=0.2, timeout_s=timeout_s)
        assert job["state"] == "done", job
        return job

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout_s)


def raw_request(daemon: DaemonProcess, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict]:  # fmt: skip
    """(status, JSON body) of one request, whatever the status; a body that is not JSON as ``{"text": ...}``."""
    request = urllib.request.Request(daemon.client.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read()
    try:
        return status, json.loads(text or b"null")
    except ValueError:
        return status, {"text": text.decode(errors="replace")}


@contextmanager
def running_daemon(config: Path, port: int, prefix: Sequence[str] = ()) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(config, port, prefix)
    try:
        yield daemon
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(timeout=30)

