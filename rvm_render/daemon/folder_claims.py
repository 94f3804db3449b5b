"""Watch-folder ownership: one daemon renders a watch folder, however many nodes share it.

Two render nodes started on the same watch folder (one share, two machines) would both render every
file dropped there. The daemon that watches a folder owns it through a claim file in it,
``.rvm-render-claim.json`` (a dot file, which the watcher ignores): the owner's host, pid, state
dir, since when it owns the folder, and a heartbeat it renews every ``timeout_s / 4``. Another
daemon refuses the folder, naming the owner, while that heartbeat is younger than ``timeout_s``
(``claim_timeout_seconds`` in ``config.yaml``), and takes the folder over once it is older (the
owner died or lost the share). The same host and state dir is the same node: a daemon restarted
after a crash takes its folders back at once. A clean stop removes the claims.

This is not the state dir's lock (one daemon per state dir): two nodes with their own state dirs
may share media roots, never a watch folder.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from rvm_render.media.commit import write_bytes_atomically

log = logging.getLogger(__name__)

__all__ = ["CLAIM_FILE", "Claim", "FolderClaims"]

CLAIM_FILE = ".rvm-render-claim.json"


@dataclass(frozen=True, slots=True)
class Claim:
    """Who owns a watch folder: a daemon's host, pid and state dir; since and heartbeat in Unix seconds."""

    host: str
    pid: int
    state_dir: str
    since: float
    heartbeat: float

    def same_node(self, other: Claim) -> bool:
        return (self.host, self.state_dir) == (other.host, other.state_dir)

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.since, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{self.host} (pid {self.pid}, state dir {self.state_dir}) since {since}"


class FolderClaims:
    """This daemon's claims on its watch folders.

    Args:
        state_dir: this daemon's state dir (with the host, its identity as a node).
        timeout_s: a claim whose heartbeat is older than this is taken over.
    """

    def __init__(self, state_dir: Path, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.heartbeat_s = timeout_s / 4
        self._own: dict[Path, Claim] = {}
        self._identity = Claim(socket.gethostname(), os.getpid(), str(state_dir.resolve()), 0.0, 0.0)
        self._renewed = 0.0
        self._tried: dict[Path, float] = {}
        self._refused: set[Path] = set()

    def due(self, folder: Path) -> bool:
        """Whether to try to claim ``folder`` now: at first, then once a heartbeat period after the last try."""
        now = time.time()
        if now - self._tried.get(folder, -math.inf) < self.heartbeat_s:
            return False
        self._tried[folder] = now
        return True

    def claim(self, folder: Path) -> bool:
        """Own ``folder`` unless another live daemon does (logged in one line naming it); True when owned."""
        now = time.time()
        current = _read(folder)
        age_s = now - current.heartbeat if current else 0.0
        if current and not current.same_node(self._identity) and age_s <= self.timeout_s:
            level = logging.DEBUG if folder in self._refused else logging.ERROR  # said once, retried quietly
            self._refused.add(folder)
            log.log(level, "watch folder %s is owned by the daemon on %s (heartbeat %.0f s ago); not watched here, "
                      "taken over when its heartbeat is older than %.0f s (claim_timeout_seconds)",
                      folder, current.describe(), age_s, self.timeout_s)  # fmt: skip
            return False
        if current and not current.same_node(self._identity):
            log.warning("watch folder %s: taking it over from the daemon on %s, whose heartbeat is %.0f s old, "
                        "older than claim_timeout_seconds (%.0f s)",
                        folder, current.describe(), age_s, self.timeout_s)  # fmt: skip
        claim = Claim(**{**asdict(self._identity), "since": now, "heartbeat": now})
        _write(folder, claim)
        self._own[folder] = claim
        return True

    def renew(self) -> None:
        """Renew the heartbeat of every owned folder, at most every ``timeout_s / 4``."""
        now = time.time()
        if now - self._renewed < self.heartbeat_s:
            return
        self._renewed = now
        for folder, claim in list(self._own.items()):
            current = _read(folder)
            if current is not None and not current.same_node(self._identity):
                log.error("watch folder %s was taken over by the daemon on %s; no longer watched here",
                          folder, current.describe())  # fmt: skip
                del self._own[folder]
                continue
            self._own[folder] = Claim(**{**asdict(claim), "heartbeat": now})
            _write(folder, self._own[folder])

    def owns(self, folder: Path) -> bool:
        return folder in self._own

    def release(self) -> None:
        """Remove this daemon's claim files (a clean stop)."""
        for folder in self._own:
            current = _read(folder)
            if current is not None and current.same_node(self._identity):
                (folder / CLAIM_FILE).unlink(missing_ok=True)
        self._own.clear()


def _read(folder: Path) -> Claim | None:
    """The folder's claim; None when there is none or it cannot be read (a half-written one is replaced)."""
    try:
        return Claim(**json.loads((folder / CLAIM_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _write(folder: Path, claim: Claim) -> None:
    """Write the claim whole (a hidden temp file beside it, renamed when complete)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(folder / CLAIM_FILE, json.dumps(asdict(claim)).encode())
