"""Crash tests with real worker processes and a real Redis: kill -9 mid-job, a plugin that raises, one that runs
past the job timeout, one that never stops, a full disk. After each, every job reaches the right final state, no
file is half-written, the database agrees with the disk, and the job's event stream (what SSE clients read) ends
with the final state.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from isengard.api.app import create_app
from isengard.config import Settings
from isengard.db.migrate import upgrade
from isengard.db.models import Job, JobArtifact
from isengard.domain import ArtifactKind, JobKind
from isengard.queue import jobs as queue
from isengard.queue.workers import list_workers
from isengard.worker.main import EXIT_JOB_DID_NOT_STOP
from tests.integration.queue_support import (
    REPO_ROOT,
    JobStore,
    queue_settings,
    stop_process,
    trace_lines,
    wait_for,
    worker_env,
)

pytestmark = [pytest.mark.timeout(180), pytest.mark.databases]


@pytest.fixture()
def crash_settings(data_dir: Path, redis_url: str) -> Settings:
    settings = queue_settings(data_dir, redis_url, min_free_bytes=0)
    upgrade(settings.sqlalchemy_url)
    return settings


@pytest.fixture()
def store(crash_settings: Settings) -> Iterator[JobStore]:
    job_store = JobStore(crash_settings)
    yield job_store
    job_store.close()


class Workers:
    """Worker processes started by a test, each killed by its own process group at the end."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, worker_id: str, **env: str) -> subprocess.Popen[bytes]:
        environment = worker_env(self.settings) | env
        log = (self.log_dir / f"{worker_id}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "isengard.cli", "worker", "--id", worker_id],
            env=environment,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def kill9(self, process: subprocess.Popen[bytes]) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes:
            stop_process(process)


@pytest.fixture()
def workers(crash_settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(crash_settings, tmp_path)
    yield started
    started.stop_all()


def wait_final(store: JobStore, job_id: str, timeout: float = 90) -> Job:
    def final() -> Job | None:
        job = store.job(job_id)
        return job if job.status in {"succeeded", "failed", "cancelled"} else None

    result: Job = wait_for(final, timeout, f"job {job_id} did not finish", interval=0.1)
    return result


def assert_consistent(settings: Settings, store: JobStore, job_id: str) -> list[JobArtifact]:
    """No temporary (half-written) files anywhere; every artifact row points at a whole file in the data tree."""
    leftovers = [p for p in settings.data_path.rglob("*") if ".part" in p.name and p.is_file()]
    assert leftovers == [], leftovers
    with store.sessions() as session:
        artifacts = list(session.scalars(select(JobArtifact).where(JobArtifact.job_id == job_id)))
    for artifact in artifacts:
        path = settings.data_path / artifact.path
        assert path.is_file(), artifact.path
        assert settings.data_path in path.resolve().parents
    return artifacts


def final_sse_status(settings: Settings, job_id: str) -> tuple[str, list[str]]:
    """Read the job's SSE stream as a client would; a finished job's stream ends with its final status."""
    statuses: list[str] = []
    with TestClient(create_app(settings)) as client, client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        assert stream.status_code == 200
        event = ""
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "status":
                statuses.append(json.loads(line.split(":", 1)[1])["status"])
    assert statuses, "no status events"
    return statuses[-1], statuses


def test_kill_9_mid_training_resumes_from_the_last_checkpoint(
    crash_settings: Settings, store: JobStore, workers: Workers
) -> None:
    job = store.submit("test-steps", {"steps": 40, "sleep": 0.05, "checkpoint_every": 5})
    first = workers.start("crash-w1")
    steps_done = lambda: sum(line.startswith("step ") for line in trace_lines(crash_settings, job))  # noqa: E731
    wait_for(lambda: steps_done() >= 12, 60, "no progress")
    workers.kill9(first)

    workers.start("crash-w2")
    done = wait_final(store, job.id)
    assert done.status == "succeeded", done.error
    assert done.result["resumed_from"] >= 10  # from a checkpoint, not from zero
    assert done.attempts >= 2
    lines = trace_lines(crash_settings, done)
    resumed = [line for line in lines if line.startswith(f"start from={done.result['resumed_from']}")]
    assert resumed, lines
    artifacts = assert_consistent(crash_settings, store, job.id)
    assert [a.kind for a in artifacts].count(ArtifactKind.LORA.value) == 1
    last, statuses = final_sse_status(crash_settings, job.id)
    assert last == "succeeded"
    assert "running" in statuses


def test_kill_9_mid_generation_loses_no_image(crash_settings: Settings, store: JobStore, workers: Workers) -> None:
    count = 400
    job = store.submit("test-echo", {"count": count, "prompt": "a knight"}, kind=JobKind.GENERATION)
    first = workers.start("gen-w1")

    def outputs_so_far() -> int:
        with store.sessions() as session:
            rows = session.scalars(select(JobArtifact).where(JobArtifact.job_id == job.id)).all()
            return len(rows)

    wait_for(lambda: outputs_so_far() >= 20, 60, "no outputs")
    workers.kill9(first)
    assert store.job(job.id).status == "running"  # the crash left it mid-way

    workers.start("gen-w2")
    done = wait_final(store, job.id)
    assert done.status == "succeeded", done.error
    artifacts = assert_consistent(crash_settings, store, job.id)
    outputs = [a for a in artifacts if a.kind == ArtifactKind.OUTPUT.value]
    # Every requested image exists as a whole file with a row; none is recorded twice.
    assert len({a.path for a in outputs}) == count
    assert len(outputs) == count
    assert final_sse_status(crash_settings, job.id)[0] == "succeeded"


def test_a_plugin_that_raises_fails_its_job_and_the_worker_goes_on(
    crash_settings: Settings, store: JobStore, workers: Workers
) -> None:
    failing = store.submit("test-fail", {"message": "the dataset has no images"})
    after = store.submit("test-steps", {"steps": 3, "sleep": 0.01})
    workers.start("raise-w1")
    failed = wait_final(store, failing.id)
    assert failed.status == "failed"
    assert failed.error == "the dataset has no images"
    assert wait_final(store, after.id).status == "succeeded"
    assert_consistent(crash_settings, store, failing.id)
    assert final_sse_status(crash_settings, failing.id)[0] == "failed"


def test_a_job_running_past_its_timeout_fails_and_frees_the_worker(
    crash_settings: Settings, store: JobStore, workers: Workers
) -> None:
    hanging = store.submit("test-steps", {"steps": 10_000, "sleep": 0.05})
    after = store.submit("test-steps", {"steps": 3, "sleep": 0.01})
    workers.start("hang-w1", ISENGARD_JOB_TIMEOUT_SECONDS="2")
    timed_out = wait_final(store, hanging.id, timeout=60)
    assert timed_out.status == "failed"
    assert "timed out" in (timed_out.error or "")
    assert wait_final(store, after.id).status == "succeeded"
    assert_consistent(crash_settings, store, hanging.id)
    assert final_sse_status(crash_settings, hanging.id)[0] == "failed"


def test_a_plugin_that_never_stops_fails_its_job_and_its_worker_exits_for_a_fresh_one(
    crash_settings: Settings, store: JobStore, workers: Workers, redis_client: redis.Redis
) -> None:
    hanging = store.submit("test-hang", {})
    after = store.submit("test-steps", {"steps": 3, "sleep": 0.01})
    stuck = workers.start("stuck-w1", ISENGARD_JOB_TIMEOUT_SECONDS="1", ISENGARD_JOB_TIMEOUT_GRACE_SECONDS="1")
    assert stuck.wait(timeout=90) == EXIT_JOB_DID_NOT_STOP, "the worker exits with its own status"
    failed = store.job(hanging.id)
    assert failed.status == "failed"
    assert "timed out after 1 s and did not stop" in (failed.error or "")
    assert "the worker restarted" in (failed.error or "")
    assert failed.attempts == 1
    # Nothing of the job or the worker is left in Redis: entry acked, lease released, heartbeat gone.
    assert hanging.id not in queue.stream_job_ids(redis_client, "training")
    assert queue.lease_holder(redis_client, hanging.id) is None
    assert not list_workers(redis_client)
    assert store.job(after.id).status == "queued", "the next job was not taken by the exiting worker"
    assert final_sse_status(crash_settings, hanging.id)[0] == "failed"

    workers.start("stuck-w2")
    done = wait_final(store, after.id)
    assert done.status == "succeeded", done.error
    assert done.worker_id == "stuck-w2"
    assert_consistent(crash_settings, store, hanging.id)


def test_a_full_disk_fails_jobs_clearly_and_refuses_uploads_with_507(
    crash_settings: Settings, store: JobStore, workers: Workers
) -> None:
    impossible = str(2**62)  # more free space than any disk has: the data folder counts as full
    job = store.submit("test-steps", {"steps": 3, "sleep": 0.01})
    workers.start("disk-w1", ISENGARD_MIN_FREE_BYTES=impossible)
    failed = wait_final(store, job.id)
    assert failed.status == "failed"
    assert "not enough free disk space" in (failed.error or "")
    assert "ISENGARD_MIN_FREE_BYTES" in (failed.error or "")
    assert_consistent(crash_settings, store, job.id)

    full = crash_settings.model_copy(update={"min_free_bytes": 2**62})
    with TestClient(create_app(full)) as client:
        character = client.post("/api/characters", json={"name": "Disk Test"})
        assert character.status_code == 201, character.text
        files: Any = [("files", ("a.png", b"\x89PNG" + b"0" * (200 * 1024), "image/png"))]
        refused = client.post(f"/api/characters/{character.json()['id']}/images", files=files)
        assert refused.status_code == 507
        assert "not enough free disk space" in refused.json()["detail"]
    uploads = crash_settings.data_path / "uploads"
    assert not [p for p in uploads.rglob("*") if p.is_file()]
