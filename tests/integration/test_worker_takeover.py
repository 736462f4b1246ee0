"""Crash recovery: a killed worker's job is taken over and resumed; SIGTERM hands a job back; poison jobs stop."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import redis

from isengard.api.services.jobs.manage import job_history, job_out
from isengard.db.migrate import upgrade
from isengard.db.models import Job
from isengard.domain import JobStatus
from isengard.jobs.history import load_events
from isengard.logging import correlation_id
from isengard.queue import keys
from isengard.queue.workers import list_workers
from isengard.worker.main import EXIT_JOBS_FAILED
from tests.integration.queue_support import (
    JobStore,
    queue_settings,
    start_worker_process,
    stop_process,
    trace_lines,
    wait_for,
)

pytestmark = pytest.mark.databases


def _steps(lines: list[str], pid: int) -> list[int]:
    return [int(line.split()[1]) for line in lines if line.startswith("step ") and f"pid={pid} " in line]


def _shown_lost(store: JobStore, job_id: str) -> bool:
    with store.sessions() as session:
        row = session.get(Job, job_id)
        assert row is not None
        return job_out(store.services, row).worker_lost


def test_sigkill_mid_job_then_takeover_resumes_from_the_last_checkpoint(
    data_dir: Path, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    settings = queue_settings(data_dir, redis_url, lease_seconds=1.5, heartbeat_seconds=0.3)
    upgrade(settings.sqlalchemy_url)
    store = JobStore(settings)
    token = correlation_id.set("req-takeover-42")
    try:
        job = store.submit("test-steps", {"steps": 40, "sleep": 0.1, "checkpoint_every": 5})
    finally:
        correlation_id.reset(token)
    first = start_worker_process(settings, "doomed")
    second = None
    try:
        wait_for(lambda: (store.job(job.id).progress or {}).get("step", 0) >= 12, 90, "the first worker got going")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = store.job(job.id)
        assert killed_at.status == "running" and killed_at.worker_id == "doomed"
        assert redis_client.exists(keys.job_lease(job.id)), "the dead worker's lease is still there until it expires"
        # Its heartbeat record outlives it by a lease, but the missed beats tell at once that it is lost.
        wait_for(lambda: _shown_lost(store, job.id), 5, "the run shows its worker lost")
        assert redis_client.exists(keys.worker_heartbeat("doomed")), "lost is told before the record expires"
        assert "doomed" not in [w["id"] for w in list_workers(redis_client, settings.heartbeat_seconds)]

        log_path = tmp_path / "rescuer.log"
        second = start_worker_process(settings, "rescuer", burst=True, log_path=log_path)
        assert second.wait(timeout=120) == 0
        done = store.job(job.id)
        assert done.status == "succeeded", done.error
        assert done.worker_id == "rescuer"
        assert done.attempts == 2
        lines = trace_lines(settings, job)
        resumed_from = done.result["resumed_from"]
        assert resumed_from >= 10 and resumed_from % 5 == 0, "resumed from a complete checkpoint"
        # The loss history says which attempt reported each point: the steps both attempts ran are told apart.
        with store.sessions() as session:
            loss = job_history(session, job.id).loss
        attempts = [point.attempt for point in loss]
        assert set(attempts) == {1, 2} and attempts == sorted(attempts)
        for attempt in (1, 2):
            steps = [point.step for point in loss if point.attempt == attempt]
            assert steps == sorted(set(steps)), "one point per step within an attempt"
        assert min(point.step for point in loss if point.attempt == 2) == resumed_from + 1
        with store.sessions() as session:
            statuses = [event.message for _, event in load_events(session, job.id, types=["status"])]
        assert f"resumed from step {resumed_from} (attempt 2 of 3) after worker doomed was lost" in statuses
        assert not _shown_lost(store, job.id)
        first_steps, second_steps = _steps(lines, first.pid), _steps(lines, second.pid)
        assert first_steps[0] == 1 and max(first_steps) >= 12
        assert second_steps == list(range(resumed_from + 1, 41)), "the rescuer ran only what came after"
        # The rescuer's log lines about the job carry the id of the request that created it.
        records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        about_job = [r for r in records if r.get("job_id") == job.id]
        assert about_job, "the worker logged about the job"
        assert {r["correlation_id"] for r in about_job} == {"req-takeover-42"}
    finally:
        stop_process(first)
        if second is not None:
            stop_process(second)
        store.close()


def test_sigterm_hands_the_job_back_and_another_worker_resumes_it(data_dir: Path, redis_url: str) -> None:
    settings = queue_settings(data_dir, redis_url)
    upgrade(settings.sqlalchemy_url)
    store = JobStore(settings)
    job = store.submit("test-steps", {"steps": 60, "sleep": 0.05, "checkpoint_every": 10})
    first = start_worker_process(settings, "leaving")
    second = None
    try:
        wait_for(lambda: (store.job(job.id).progress or {}).get("step", 0) >= 15, 90, "the worker got going")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
        handed_back = store.job(job.id)
        assert handed_back.status == "queued", "a clean shutdown leaves the job for another worker"
        assert handed_back.attempts == 0, "an interrupted attempt is not a failed one"
        assert handed_back.worker_id is None
        second = start_worker_process(settings, "next", burst=True)
        assert second.wait(timeout=120) == 0
        done = store.job(job.id)
        assert done.status == "succeeded" and done.worker_id == "next" and done.attempts == 1
        assert done.result["resumed_from"] >= 10
    finally:
        stop_process(first)
        if second is not None:
            stop_process(second)
        store.close()


def test_a_job_that_kills_its_workers_fails_after_max_attempts(data_dir: Path, redis_url: str) -> None:
    settings = queue_settings(data_dir, redis_url, lease_seconds=1.0, heartbeat_seconds=0.2, max_attempts=2)
    upgrade(settings.sqlalchemy_url)
    store = JobStore(settings)
    poison = store.submit("test-crash", {"code": 137})
    healthy = store.submit("test-steps", {"steps": 3, "sleep": 0.01})
    exit_codes = []
    try:
        for index in range(6):
            worker = start_worker_process(settings, f"victim-{index}", burst=True)
            exit_codes.append(worker.wait(timeout=120))
            if JobStatus(store.job(poison.id).status).is_final and store.job(healthy.id).status == "succeeded":
                break
        failed = store.job(poison.id)
        assert failed.status == "failed"
        assert failed.error is not None and "gave up after 2 attempts" in failed.error
        assert exit_codes.count(137) == 2, f"exactly max_attempts workers died: {exit_codes}"
        # The worker that gave up on the job (and ran the healthy one) says a job failed in its burst.
        assert exit_codes[-1] == EXIT_JOBS_FAILED
        assert store.job(healthy.id).status == "succeeded", "the other job was not stuck behind the poison one"
    finally:
        store.close()
