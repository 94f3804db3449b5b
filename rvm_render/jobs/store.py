"""The render node's persistent job queue: SQLite in WAL mode, one module owning the schema.

A job is one input (a clip, an image sequence, a timeline), optionally a frame range of a clip,
with its preset and output folder.
States move only along :data:`TRANSITIONS`, each change in one transaction, so a crash or
``kill -9`` leaves the store consistent: at start-up, jobs still marked running are queued again
(:meth:`JobStore.requeue_interrupted`) and resume from their work dirs, unless the node died
under them more than a few times (then they fail: the input most likely crashes the node). A job's *fingerprint*
(:func:`input_fingerprint`) identifies the exact file content: the same file is never queued
twice for the same output and preset, while a file re-exported under the same name is a new job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from rvm_render.errors import JobError, JobNotFoundError, NodeStorageError
from rvm_render.jobs.kinds import MAX_PRIORITY, JobKind
from rvm_render.media.fingerprint import HEAD_BYTES

__all__ = [
    "JobKind",
    "JobState",
    "JobRecord",
    "JobStore",
    "TRANSITIONS",
    "FINAL_STATES",
    "input_fingerprint",
    "store_path",
    "MAX_PRIORITY",
]


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Allowed state changes: (from, to).
TRANSITIONS: frozenset[tuple[JobState, JobState]] = frozenset(
    {
        (JobState.QUEUED, JobState.RUNNING),
        (JobState.QUEUED, JobState.CANCELLED),
        (JobState.RUNNING, JobState.DONE),
        (JobState.RUNNING, JobState.FAILED),
        (JobState.RUNNING, JobState.CANCELLED),
        (JobState.RUNNING, JobState.QUEUED),  # interrupted by a stop or crash: resumes
        (JobState.FAILED, JobState.QUEUED),  # retry
        (JobState.CANCELLED, JobState.QUEUED),  # retry
        (JobState.DONE, JobState.QUEUED),  # its outputs are gone: rendered again
    }
)
FINAL_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})

SCHEMA_VERSION = 3
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('clip', 'timeline')),
        input TEXT NOT NULL,
        frames TEXT NOT NULL DEFAULT '',
        fingerprint TEXT NOT NULL,
        preset TEXT NOT NULL,
        output_dir TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
        source TEXT NOT NULL,
        frames_done INTEGER NOT NULL DEFAULT 0,
        frames_total INTEGER,
        fps REAL,
        eta_s REAL,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        outputs TEXT NOT NULL DEFAULT '[]',
        error TEXT,
        crashes INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS jobs_once_v2 ON jobs (fingerprint, frames, output_dir, preset)",
    "CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, priority DESC, id)",
)
#: Schema changes from each earlier version, applied in order when an older store is opened.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE jobs ADD COLUMN frames TEXT NOT NULL DEFAULT ''",
        "DROP INDEX IF EXISTS jobs_once",
    ),
    2: ("ALTER TABLE jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0",),
}
_COLUMNS = (
    "id, kind, input, frames, fingerprint, preset, output_dir, priority, state, source, frames_done, frames_total, "
    "fps, eta_s, created_at, started_at, finished_at, outputs, error, crashes"
)


def input_fingerprint(path: Path) -> str:
    """What identifies an input's exact content, cheaply: for a file its resolved path, size,
    mtime and first MiB; for a folder (an image sequence) the same of every file in it."""
    resolved = path.resolve()
    digest = hashlib.sha256(str(resolved).encode())
    try:
        files = sorted(p for p in resolved.iterdir() if p.is_file()) if resolved.is_dir() else [resolved]
        for file in files:
            stat = file.stat()
            digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        with files[0].open("rb") as stream:
            digest.update(stream.read(HEAD_BYTES))
    except (OSError, IndexError) as err:
        raise JobError(f"cannot fingerprint '{resolved}': {getattr(err, 'strerror', None) or err}") from err
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job as the store holds it (times are Unix seconds)."""

    id: int
    kind: JobKind
    input: str
    frames: str
    """``FIRST-LAST`` (inclusive frame numbers) of a clip job limited to a range; empty for all frames."""
    fingerprint: str
    preset: dict[str, Any]
    output_dir: str
    priority: int
    state: JobState
    source: str
    frames_done: int
    frames_total: int | None
    fps: float | None
    eta_s: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    outputs: list[str]
    error: str | None
    crashes: int
    """How many times the node died while this job was running (a retry starts again from 0)."""

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> JobRecord:
        values = dict(row)
        values["kind"] = JobKind(values["kind"])
        values["state"] = JobState(values["state"])
        values["preset"] = json.loads(values["preset"])
        values["outputs"] = json.loads(values["outputs"])
        return cls(**values)

    @property
    def frame_range(self) -> tuple[int, int] | None:
        """(first, last) of :attr:`frames`, None for all frames."""
        if not self.frames:
            return None
        first, _, last = self.frames.partition("-")
        return int(first), int(last)

    def to_json(self) -> dict[str, Any]:
        document = {name: getattr(self, name) for name in self.__dataclass_fields__}
        document["kind"], document["state"] = self.kind.value, self.state.value
        return document


class JobStore:
    """Jobs in ``<state_dir>/jobs.sqlite``; safe to share between the daemon's threads.

    Raises:
        JobError: the database cannot be opened or is of another schema version.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._transaction() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise JobError(f"job store '{path}' has schema version {version}, this rvm-render reads "
                                   f"{SCHEMA_VERSION}; use another state_dir or upgrade rvm-render")  # fmt: skip
                for older in range(version, SCHEMA_VERSION) if version else ():  # 0: a new store
                    for statement in _MIGRATIONS[older]:
                        db.execute(statement)
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as err:
            raise JobError(f"cannot open job store '{path}': {err}; use another state_dir") from err
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` .. ``COMMIT``; rolled back on any error.

        Raises:
            NodeStorageError: the store's disk is full.
        """
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as err:
            if err.sqlite_errorcode != sqlite3.SQLITE_FULL:
                raise
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise NodeStorageError(f"the node's disk is full: job store '{self.path}' cannot be written; free "
                                   "space on that disk (or move state_dir) and try again") from err  # fmt: skip

    @contextlib.contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._transaction() as db:
            yield db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- reading -------------------------------------------------------------------------

    def get(self, job_id: int) -> JobRecord:
        """Raises: JobNotFoundError."""
        with self._locked() as db:
            return self._get(db, job_id)

    @staticmethod
    def _get(db: sqlite3.Connection, job_id: int) -> JobRecord:
        row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job {job_id}; list the jobs with rvm-render status")
        return JobRecord._from_row(row)

    def jobs(self, state: JobState | None = None) -> list[JobRecord]:
        """Every job (of ``state``), newest first."""
        with self._locked() as db:
            if state is None:
                rows = db.execute(f"SELECT {_COLUMNS} FROM jobs ORDER BY id DESC").fetchall()
            else:
                rows = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE state = ? ORDER BY id DESC",
                                  (state.value,)).fetchall()  # fmt: skip
        return [JobRecord._from_row(row) for row in rows]

    def rendered_before(self, job: JobRecord) -> bool:
        """Whether an earlier job rendered the same input into the same folder and finished (a re-export)."""
        with self._locked() as db:
            row = db.execute(
                "SELECT 1 FROM jobs WHERE input = ? AND output_dir = ? AND state = 'done' AND id < ? LIMIT 1",
                (job.input, job.output_dir, job.id),
            ).fetchone()
        return row is not None

    def queue_depth(self) -> int:
        with self._locked() as db:
            return int(db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0])

    # --- changing ------------------------------------------------------------------------

    def add(
        self,
        kind: JobKind,
        input_path: str,
        fingerprint: str,
        preset: dict[str, Any],
        output_dir: str,
        *,
        frames: str = "",
        priority: int = 0,
        source: str = "api",
    ) -> tuple[JobRecord, bool]:
        """Queue a job; returns it and whether it is new (the same content, range, output and preset is
        queued once)."""
        preset_text = json.dumps(preset, sort_keys=True, separators=(",", ":"))
        with self._locked() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO jobs (kind, input, frames, fingerprint, preset, output_dir, priority, state, "
                "source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                (kind.value, input_path, frames, fingerprint, preset_text, output_dir, priority, source, time.time()),
            )
            if cursor.rowcount:
                return self._get(db, int(cursor.lastrowid or 0)), True
            row = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE fingerprint = ? AND frames = ? AND output_dir = ? AND preset = ?",
                (fingerprint, frames, output_dir, preset_text),
            ).fetchone()
            return JobRecord._from_row(row), False

    def _move(self, db: sqlite3.Connection, job_id: int, to: JobState, **fields: Any) -> JobRecord:
        current = self._get(db, job_id)
        if (current.state, to) not in TRANSITIONS:
            raise JobError(f"job {job_id} is {current.state.value}; it cannot become {to.value}")
        assignments = ", ".join(f"{name} = ?" for name in ("state", *fields))
        db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (to.value, *fields.values(), job_id))
        return self._get(db, job_id)

    def claim_next(self) -> JobRecord | None:
        """The queued job of highest priority, oldest first, moved to running; None when none is queued."""
        with self._locked() as db:
            row = db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY priority DESC, id LIMIT 1").fetchone()
            if row is None:
                return None
            return self._move(db, int(row["id"]), JobState.RUNNING, started_at=time.time(), error=None)

    def progress(self, job_id: int, frames_done: int, frames_total: int | None, fps: float | None,
                 eta_s: float | None) -> None:  # fmt: skip
        with self._locked() as db:
            db.execute(
                "UPDATE jobs SET frames_done = ?, frames_total = ?, fps = ?, eta_s = ? "
                "WHERE id = ? AND state = 'running'",
                (frames_done, frames_total, fps, eta_s, job_id),
            )

    def finish(self, job_id: int, outputs: list[str]) -> JobRecord:
        """A running job rendered all its frames (those an earlier run finished too, whatever its progress said)."""
        with self._locked() as db:
            total = self._get(db, job_id).frames_total
            done = {} if total is None else {"frames_done": total}
            return self._move(db, job_id, JobState.DONE, finished_at=time.time(), outputs=json.dumps(outputs),
                              eta_s=0.0, **done)  # fmt: skip

    def fail(self, job_id: int, error: str) -> JobRecord:
        """A running job failed: its speed and time left no longer mean anything."""
        with self._locked() as db:
            return self._move(db, job_id, JobState.FAILED, finished_at=time.time(), error=error, fps=None, eta_s=None)

    def cancel(self, job_id: int, reason: str | None = None) -> tuple[JobRecord, JobState]:
        """Cancel a queued or running job (``reason``: why, when it was not the user); returns it and the state it
        was in.

        Raises:
            JobError: the job is already done, failed or cancelled.
        """
        with self._locked() as db:
            before = self._get(db, job_id).state
            fields = {"finished_at": time.time(), "fps": None, "eta_s": None, "error": reason}
            return self._move(db, job_id, JobState.CANCELLED, **fields), before

    def retry(self, job_id: int) -> JobRecord:
        """Queue a failed or cancelled job again (it resumes from its work dir).

        Raises:
            JobError: the job is queued, running or done (only a stop or crash requeues a running job).
        """
        with self._locked() as db:
            state = self._get(db, job_id).state
            if state not in (JobState.FAILED, JobState.CANCELLED):
                raise JobError(f"job {job_id} is {state.value}; only a failed or cancelled job can be retried")
            return self._move(db, job_id, JobState.QUEUED, finished_at=None, error=None, crashes=0)

    def render_again(self, job_id: int) -> JobRecord:
        """Queue a done job again because its outputs are gone (deleted, moved)."""
        with self._locked() as db:
            return self._move(db, job_id, JobState.QUEUED, started_at=None, finished_at=None, outputs="[]",
                              frames_done=0)  # fmt: skip

    def requeue(self, job_id: int) -> JobRecord:
        """A running job that was interrupted (daemon stopping): queued again, to resume."""
        with self._locked() as db:
            return self._move(db, job_id, JobState.QUEUED, started_at=None)

    def requeue_interrupted(self, max_crashes: int) -> tuple[list[int], list[int]]:
        """At start-up: jobs still marked running were interrupted by a crash; queue them again, or fail
        those the node died under more than ``max_crashes`` times. Returns (queued again, failed)."""
        requeued: list[int] = []
        failed: list[int] = []
        with self._locked() as db:
            rows = db.execute("SELECT id, crashes FROM jobs WHERE state = 'running'").fetchall()
            for row in rows:
                job_id, crashes = int(row["id"]), int(row["crashes"]) + 1
                if crashes > max_crashes:
                    reason = (
                        f"the node stopped abruptly (crash or kill) {crashes} times while rendering this job; "
                        "not run again, as its input most likely crashes the node: check the input, then retry"
                    )
                    self._move(db, job_id, JobState.FAILED, finished_at=time.time(), crashes=crashes, error=reason)
                    failed.append(job_id)
                else:
                    self._move(db, job_id, JobState.QUEUED, started_at=None, crashes=crashes)
                    requeued.append(job_id)
        return requeued, failed


def store_path(state_dir: Path) -> Path:
    """``<state_dir>/jobs.sqlite``."""
    return Path(state_dir) / "jobs.sqlite"
