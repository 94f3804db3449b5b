"""The job store's schema: a store written by the first schema opens, migrated, with its jobs intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rvm_render.errors import JobError
from rvm_render.jobs.store import SCHEMA_VERSION, JobKind, JobState, JobStore

#: The first schema exactly as rvm-render 0.1 created it (user_version 1).
SCHEMA_1 = (
    """CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('clip', 'timeline')),
        input TEXT NOT NULL,
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
        error TEXT
    )""",
    "CREATE UNIQUE INDEX jobs_once ON jobs (fingerprint, output_dir, preset)",
    "CREATE INDEX jobs_queue ON jobs (state, priority DESC, id)",
)


def _store_of_schema_1(path: Path) -> None:
    db = sqlite3.connect(str(path))
    for statement in SCHEMA_1:
        db.execute(statement)
    db.execute(
        "INSERT INTO jobs (kind, input, fingerprint, preset, output_dir, state, source, created_at) "
        "VALUES ('clip', '/media/take.mov', 'f1', '{}', '/media/out', 'queued', 'api', 1.0)"
    )
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()


def test_a_schema_1_store_is_migrated_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    _store_of_schema_1(path)
    store = JobStore(path)
    (old,) = store.jobs()
    assert (old.input, old.frames, old.frame_range, old.state) == ("/media/take.mov", "", None, JobState.QUEUED)
    assert old.crashes == 0
    ranged, created = store.add(JobKind.CLIP, "/media/take.mov", "f1", {}, "/media/out", frames="10-19")
    assert created and ranged.frame_range == (10, 19)
    assert store.add(JobKind.CLIP, "/media/take.mov", "f1", {}, "/media/out") == (old, False)
    assert store.add(JobKind.CLIP, "/media/take.mov", "f1", {}, "/media/out", frames="10-19") == (ranged, False)
    store.close()
    assert sqlite3.connect(str(path)).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    reopened = JobStore(path)
    assert [job.id for job in reopened.jobs()] == [ranged.id, old.id]


def test_a_store_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    db = sqlite3.connect(str(path))
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JobError, match="use another state_dir or upgrade rvm-render"):
        JobStore(path)


def test_a_done_job_is_rendered_again_only_through_render_again(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    job, _ = store.add(JobKind.CLIP, "/media/take.mov", "f" * 64, {"formats": ["exr"]}, "/media/out")
    store.claim_next()
    store.progress(job.id, 8, 8, 30.0, 0.0)
    store.finish(job.id, ["/media/out/take.rvm.json"])
    with pytest.raises(JobError, match="is done"):
        store.retry(job.id)
    again = store.render_again(job.id)
    assert (again.state, again.outputs, again.frames_done, again.finished_at) == (JobState.QUEUED, [], 0, None)
    assert store.claim_next().id == job.id


def test_only_a_failed_or_cancelled_job_is_retried_and_a_final_job_keeps_no_speed(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    job, _ = store.add(JobKind.CLIP, "/media/take.mov", "f1", {}, "/media/out")
    with pytest.raises(JobError, match="is queued; only a failed or cancelled job can be retried"):
        store.retry(job.id)
    store.claim_next()
    store.progress(job.id, 12, 48, 3.5, 10.3)
    with pytest.raises(JobError, match="is running; only a failed or cancelled job can be retried"):
        store.retry(job.id)
    assert store.get(job.id).state == JobState.RUNNING
    failed = store.fail(job.id, "cannot decode")
    assert (failed.fps, failed.eta_s, failed.frames_done) == (None, None, 12)
    assert store.retry(job.id).state == JobState.QUEUED
    store.claim_next()
    store.progress(job.id, 20, 48, 3.5, 8.0)
    cancelled, before = store.cancel(job.id, "the input changed")
    assert before == JobState.RUNNING
    assert (cancelled.fps, cancelled.eta_s, cancelled.error) == (None, None, "the input changed")
    store.close()
