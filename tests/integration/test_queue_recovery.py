"""Redis is not the source of truth: after Redis loses its data, queued work is re-enqueued from the database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import update

from isengard.api.app import create_app
from isengard.db.migrate import upgrade
from isengard.db.models import Job
from isengard.db.session import session_scope
from isengard.jobs.recovery import QueueRecovery
from isengard.queue import jobs as queue
from isengard.queue import keys
from isengard.redis_server import free_port
from tests.integration.queue_support import JobStore, open_store, queue_settings, trace_lines, wait_for, worker_thread

pytestmark = pytest.mark.databases


def _stream_ids(client: redis.Redis) -> set[str]:
    return set(queue.stream_job_ids(client, "training"))


def test_flush_then_reenqueue_from_the_database(data_dir: Path, redis_url: str, redis_client: redis.Redis) -> None:
    settings = queue_settings(data_dir, redis_url)
    with open_store(settings) as store:
        with TestClient(create_app(settings)):
            finished = store.submit("test-steps", {"steps": 2})
            with worker_thread(settings, "early", burst=True):
                wait_for(lambda: store.job(finished.id).status == "succeeded", 60, "first job ran")
            waiting = [store.submit("test-steps", {"steps": 2}) for _ in range(3)]
            assert _stream_ids(redis_client) == {j.id for j in waiting}
            redis_client.flushall()  # a restart without persistence
            # The API notices the empty Redis (sentinel gone) and puts the queued jobs back, and only those.
            wait_for(lambda: _stream_ids(redis_client) == {j.id for j in waiting}, 15, "re-enqueued", 0.1)
            assert redis_client.exists(keys.SENTINEL)
            with worker_thread(settings, "after-flush", burst=True):
                wait_for(lambda: all(store.job(j.id).status == "succeeded" for j in waiting), 60, "jobs ran")
        for job in [finished, *waiting]:
            starts = [line for line in trace_lines(settings, job) if line.startswith("start")]
            assert len(starts) == 1, f"job {job.id} ran {len(starts)} times"
            assert store.job(job.id).attempts == 1


def test_jobs_saved_while_redis_was_down_are_enqueued_when_the_api_starts(
    data_dir: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    down = queue_settings(data_dir, f"redis://127.0.0.1:{free_port()}/0")
    upgrade(down.sqlalchemy_url)
    offline = JobStore(down)
    try:
        saved = offline.submit("test-steps", {"steps": 2})
    finally:
        offline.close()
    assert saved.status == "queued" and saved.stream_id is None, "the row is kept even though Redis was down"
    settings = queue_settings(data_dir, redis_url)
    store = JobStore(settings)
    try:
        with TestClient(create_app(settings)):
            # Done in the lifespan, before the first request is served.
            assert _stream_ids(redis_client) == {saved.id}
            assert store.job(saved.id).stream_id is not None
            with worker_thread(settings, "late", burst=True):
                wait_for(lambda: store.job(saved.id).status == "succeeded", 60, "the saved job ran")
    finally:
        store.close()


def test_running_job_without_lease_or_entry_is_reenqueued_only_after_a_lease_period(
    data_dir: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    settings = queue_settings(data_dir, redis_url, lease_seconds=1.0, heartbeat_seconds=0.2)
    with open_store(settings) as store:
        job = store.submit("test-steps", {"steps": 3, "sleep": 0.01})
        # Its worker died while Redis lost everything: the row says running, Redis knows nothing.
        with session_scope(store.sessions) as session:
            session.execute(update(Job).where(Job.id == job.id).values(status="running", worker_id="ghost", attempts=1))
        redis_client.flushall()
        recovery = QueueRecovery(settings, store.sessions, redis_client)
        assert recovery.recover() == [], "a live worker may still be re-taking its lease"
        # A worker that is alive takes its lease back within a heartbeat; this one never does.
        time.sleep(settings.lease_seconds + 0.1)
        assert recovery.recover() == [job.id]
        assert recovery.recover() == [], "enqueued once"
        with worker_thread(settings, "heir", burst=True):
            wait_for(lambda: store.job(job.id).status == "succeeded", 60, "resumed")
        done = store.job(job.id)
        assert done.attempts == 2 and done.worker_id == "heir"


def test_a_lease_holder_keeps_its_running_job(data_dir: Path, redis_url: str, redis_client: redis.Redis) -> None:
    settings = queue_settings(data_dir, redis_url, lease_seconds=1.0, heartbeat_seconds=0.2)
    with open_store(settings) as store:
        job = store.submit("test-steps", {"steps": 3})
        with session_scope(store.sessions) as session:
            session.execute(update(Job).where(Job.id == job.id).values(status="running", worker_id="alive"))
        redis_client.flushall()
        queue.acquire_lease(redis_client, job.id, "alive", 30)
        recovery = QueueRecovery(settings, store.sessions, redis_client)
        recovery.recover()
        time.sleep(settings.lease_seconds + 0.1)
        assert recovery.recover() == []
        assert _stream_ids(redis_client) == set()
