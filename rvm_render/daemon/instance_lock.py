"""One daemon per state folder and per port, claimed before anything of the node is touched.

A second ``rvm-render daemon`` on the same config would otherwise open the same job store, take
the first one's running job as interrupted and render it too. :func:`claim_state_dir` takes an
exclusive ``flock`` on ``<state_dir>/daemon.lock`` (held until the process exits, released by the
kernel even after ``kill -9``) and records the holder in it: pid, host and start time, which a
refused second daemon names. :func:`listening_socket` binds the API's port just as early, so a
daemon on another state folder but a busy port stops before opening its store. This is the lock
of one state folder; sharing watch folders between daemons is another matter.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rvm_render.errors import ConfigError, RvmRenderError

__all__ = ["LOCK_FILE", "StateLock", "claim_state_dir", "listening_socket"]

LOCK_FILE = "daemon.lock"


@dataclass(frozen=True, slots=True)
class StateLock:
    """A held claim on a state folder; released by :meth:`release` or when the process ends."""

    path: Path
    handle: IO[str]

    def release(self) -> None:
        self.handle.close()  # closing drops the flock; the file stays (removing it would race a new holder)


def _holder_text(path: Path) -> str:
    """``pid 123 on host render01 since 2026-12-04 17:02:11 UTC``, from what the holder wrote."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(holder["since"])))
        return f"pid {int(holder['pid'])} on host {holder['host']} since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (it has not written its pid yet)"


def claim_state_dir(state_dir: Path) -> StateLock:
    """Lock ``state_dir`` for this process and record it as the holder.

    Raises:
        RvmRenderError: another daemon holds it, naming that daemon (pid, host, since when).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK_FILE
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the life of the daemon
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise RvmRenderError(
            f"state_dir '{state_dir}' is in use by another rvm-render daemon ({_holder_text(path)}); stop that "
            "daemon first, or give this one its own state_dir and api.port"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}))
    handle.flush()
    return StateLock(path, handle)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` for the API, bound before the node touches its store.

    Raises:
        ConfigError: the port is taken or the host is not an address of this machine, naming the setting.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn picks it
    try:
        return socket.create_server((host, port), family=family)
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise ConfigError(f"api: cannot listen on {host}:{port} ({reason}); stop the daemon or program that holds "
                          "it, or change api.port or api.host") from None  # fmt: skip
