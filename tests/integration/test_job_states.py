"""The job's state machine as a worker drives it: a claim reads the job row once; a burst run that failed a job
says so in its exit status."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from isengard.config import Settings
from isengard.domain import JobKind, JobStatus
from isengard.worker.main import EXIT_JOBS_FAILED, Worker
from tests.integration.queue_support import JobStore, migrated_queue_settings

READS_JOBS = re.compile(r"^\s*SELECT\b.*\bFROM jobs\b", re.IGNORECASE | re.DOTALL)


@pytest.fixture()
def settings(data_dir: Path, redis_url: str) -> Settings:
    return migrated_queue_settings(data_dir, redis_url, min_free_bytes=0)


def test_a_claim_reads_its_job_row_once(settings: Settings, store: JobStore) -> None:
    jobs = [store.submit("test-noop", {}) for _ in range(2)]
    worker = Worker(settings, worker_id="counting", burst=True)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(worker.engine, "before_cursor_execute", record)
    assert worker.run() == 0
    for job in jobs:
        assert store.job(job.id).status == JobStatus.SUCCEEDED
    reads = [s for s in statements if READS_JOBS.match(s)]
    # Start, outcome and events are conditional writes on what that one read saw.
    assert len(reads) == len(jobs), reads
    assert any(s.lstrip().upper().startswith("UPDATE JOBS") for s in statements)


def test_a_burst_run_with_a_failed_job_exits_non_zero(settings: Settings, store: JobStore) -> None:
    ok = store.submit("test-noop", {})
    failing = store.submit("test-fail", {})
    assert Worker(settings, worker_id="burst", burst=True).run() == EXIT_JOBS_FAILED
    assert store.job(ok.id).status == JobStatus.SUCCEEDED
    assert store.job(failing.id).status == JobStatus.FAILED
    # The next burst finds nothing failed of its own: a clean run is a zero exit.
    store.submit("test-echo", {"count": 1}, kind=JobKind.GENERATION)
    assert Worker(settings, worker_id="burst-2", burst=True).run() == 0
