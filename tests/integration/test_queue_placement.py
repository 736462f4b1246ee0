"""A job whose plugin only some workers can run: the others leave it to them, and it fails if none is alive."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from isengard.config import Settings
from isengard.queue import jobs as queue
from isengard.queue.workers import list_workers
from tests.integration.queue_support import (
    REPO_ROOT,
    JobStore,
    migrated_queue_settings,
    stop_process,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.timeout(300)

StartWorker = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture()
def settings(data_dir: Path, redis_url: str) -> Settings:
    # A lease long enough for a second worker process to start (about 10 s on a busy 2-core machine, most of it the
    # plugins' capability checks) before a job no live worker can run is failed.
    return migrated_queue_settings(data_dir, redis_url, min_free_bytes=0, lease_seconds=20.0, heartbeat_seconds=0.5)


@pytest.fixture()
def start(settings: Settings, tmp_path: Path) -> Iterator[StartWorker]:
    processes: list[subprocess.Popen[bytes]] = []

    def start_worker(worker_id: str, *, picky: bool) -> subprocess.Popen[bytes]:
        env = worker_env(settings) | {"ISENGARD_TEST_PICKY": "1" if picky else "0"}
        process = subprocess.Popen(
            [sys.executable, "-m", "isengard.cli", "worker", "--id", worker_id],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"{worker_id}.log").open("wb"),
            start_new_session=True,
        )
        processes.append(process)
        return process

    yield start_worker
    for process in processes:
        stop_process(process)


def test_a_worker_that_cannot_run_the_plugin_leaves_the_job_to_one_that_can(
    store: JobStore, start: StartWorker, redis_client: redis.Redis
) -> None:
    start_worker = start
    job = store.submit("test-picky", {})
    start_worker("plain", picky=False)
    wait_for(lambda: queue.pending_entries(redis_client, "training"), 60, "the plain worker claimed the entry")
    time.sleep(0.5)
    waiting = store.job(job.id)
    assert waiting.status == "queued", waiting.error
    assert waiting.attempts == 0
    assert queue.lease_holder(redis_client, job.id) is None, "the lease is released while the job waits"

    start_worker("picky", picky=True)
    wait_for(lambda: any(w["id"] == "picky" for w in list_workers(redis_client)), 60, "the picky worker is up")
    # Whichever worker takes the idle entry over first: the plain one leaves it again, so this may take a few leases.
    done = wait_for(lambda: store.job(job.id).status in {"succeeded", "failed"} and store.job(job.id), 180, "done")
    assert done.status == "succeeded", done.error
    assert done.worker_id == "picky"
    assert done.attempts == 1


def test_a_job_no_live_worker_can_run_fails_with_the_plugins_reason_and_the_queue_goes_on(
    settings: Settings, store: JobStore, start: StartWorker, redis_client: redis.Redis
) -> None:
    start_worker = start
    job = store.submit("test-picky", {})
    after = store.submit("test-steps", {"steps": 2, "sleep": 0.01})
    start_worker("plain", picky=False)
    claimed = time.monotonic()
    wait_for(lambda: queue.pending_entries(redis_client, "training"), 60, "the plain worker claimed the entry")
    failed = wait_for(lambda: store.job(job.id).status == "failed" and store.job(job.id), 90, "the job failed")
    waited = time.monotonic() - claimed
    assert waited >= settings.lease_seconds - 1, "not before a capable worker had a lease period to show up"
    assert failed.error == "no live worker can run plugin 'test-picky': needs the picky hardware this machine lacks"
    assert failed.attempts == 0, "it never ran"
    wait_for(lambda: job.id not in queue.stream_job_ids(redis_client, "training"), 10, "its entry acknowledged")
    assert wait_for(lambda: store.job(after.id).status == "succeeded", 60, "the next job ran")
