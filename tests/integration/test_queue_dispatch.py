"""Dispatch: queued jobs go to two worker processes, each job runs exactly once; queue primitives on real Redis."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from isengard.db.migrate import upgrade
from isengard.domain import JobStatus
from isengard.queue import jobs as queue
from isengard.queue import keys
from isengard.queue.workers import list_workers
from tests.integration.queue_support import (
    JobStore,
    open_store,
    queue_settings,
    start_worker_process,
    stop_process,
    trace_lines,
    wait_for,
    worker_thread,
)

pytestmark = pytest.mark.databases


def test_two_worker_processes_share_the_queue_and_run_each_job_once(
    data_dir: Path, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    settings = queue_settings(data_dir, redis_url)
    upgrade(settings.sqlalchemy_url)
    store = JobStore(settings)
    workers = [start_worker_process(settings, f"w{i}", log_path=tmp_path / f"w{i}.log") for i in range(2)]
    try:
        # Both workers advertise themselves (and what they can run) before any work exists.
        live = wait_for(lambda: len(list_workers(redis_client)) == 2 and list_workers(redis_client), 90, "2 workers")
        assert all("training" in w["kinds"] for w in live)
        jobs = [store.submit("test-steps", {"steps": 4, "sleep": 0.1}) for _ in range(8)]
        wait_for(lambda: all(JobStatus(store.job(j.id).status).is_final for j in jobs), 120, "all jobs finished", 0.2)
        finished = [store.job(j.id) for j in jobs]
        assert [j.status for j in finished] == ["succeeded"] * 8
        assert {j.worker_id for j in finished} == {"w0", "w1"}, "both workers took work"
        for job in finished:
            lines = trace_lines(settings, job)
            assert sum(line.startswith("start") for line in lines) == 1, lines
            assert sum(line.startswith("done") for line in lines) == 1, lines
            assert job.attempts == 1
            assert job.result["steps"] == 4
        # Finished work leaves nothing behind on the stream: no pending entry, no lease.
        assert redis_client.xlen(keys.job_stream("training")) == 0
        assert not list(redis_client.scan_iter(match=keys.job_lease("*")))
    finally:
        for worker in workers:
            stop_process(worker)
        store.close()
    assert [w.returncode for w in workers] == [0, 0], "SIGTERM is a clean shutdown"
    assert not list_workers(redis_client), "a stopped worker removes its heartbeat"


def test_autoclaim_on_a_real_server_takes_idle_entries_and_drops_deleted_ones(redis_client: redis.Redis) -> None:
    first = queue.enqueue(redis_client, "training", "job-a")
    second = queue.enqueue(redis_client, "training", "job-b")
    assert queue.claim_new(redis_client, ["training"], "dead", block_ms=100) is not None
    assert queue.claim_new(redis_client, ["training"], "dead", block_ms=100) is not None
    redis_client.xdel(keys.job_stream("training"), second)  # trimmed away while pending
    assert queue.autoclaim(redis_client, "training", "alive", min_idle_ms=60_000).entries == []
    time.sleep(0.05)
    reply = queue.autoclaim(redis_client, "training", "alive", min_idle_ms=10, count=10)
    assert reply.entries == [(first, {"job_id": "job-a"})]
    # 6.2 answers a nil for the deleted entry, 7.x lists its id; either way it leaves the pending list.
    assert reply.deleted == [second] or reply.deleted_without_id == 1
    pending = queue.pending_entries(redis_client, "training")
    assert [(entry, consumer) for entry, consumer, _ in pending] == [(first, "alive")]


def test_leases_are_exclusive_and_renewed_only_by_their_holder(redis_client: redis.Redis) -> None:
    assert queue.acquire_lease(redis_client, "job-1", "w1", 5)
    assert not queue.acquire_lease(redis_client, "job-1", "w2", 5)
    assert not queue.renew_lease(redis_client, "job-1", "w2", 5)
    assert queue.renew_lease(redis_client, "job-1", "w1", 5)
    queue.release_lease(redis_client, "job-1", "w2")  # not its lease: no effect
    assert queue.lease_holder(redis_client, "job-1") == "w1"
    redis_client.flushall()
    # After Redis lost it, the holder's heartbeat takes it back.
    assert queue.renew_lease(redis_client, "job-1", "w1", 5)
    assert queue.lease_holder(redis_client, "job-1") == "w1"


def test_a_duplicate_entry_for_a_job_running_elsewhere_is_dropped_not_run(
    data_dir: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    settings = queue_settings(data_dir, redis_url)
    with open_store(settings) as store:
        job = store.submit("test-steps", {"steps": 30, "sleep": 0.05})
        with worker_thread(settings, "owner"):
            wait_for(lambda: store.job(job.id).status == "running", 60, "owner started the job")
            duplicate = queue.enqueue(redis_client, "training", job.id)  # e.g. a re-enqueue that raced a claim
            with worker_thread(settings, "second", burst=True) as second:
                wait_for(lambda: not queue.entry_job_id(redis_client, "training", duplicate), 30, "duplicate dropped")
            assert second.jobs_done == 1
            wait_for(lambda: store.job(job.id).status == "succeeded", 60, "owner finished")
        done = store.job(job.id)
        assert done.worker_id == "owner" and done.attempts == 1
        assert sum(line.startswith("start") for line in trace_lines(settings, job)) == 1
