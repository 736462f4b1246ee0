"""Torch CPU threads in a worker: one in fast-test mode (tiny steps gain nothing from more), or as configured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from isengard.config import Settings
from isengard.db.migrate import upgrade
from tests.integration.queue_support import REPO_ROOT, JobStore, queue_settings, worker_env


@pytest.fixture()
def settings(data_dir: Path, redis_url: str) -> Settings:
    found = queue_settings(data_dir, redis_url, min_free_bytes=0)
    upgrade(found.sqlalchemy_url)
    return found


def threads_in_a_worker(settings: Settings, **env: str) -> int:
    store = JobStore(settings)
    try:
        job = store.submit("test-threads", {})
        worker = subprocess.run(
            [sys.executable, "-m", "isengard.cli", "worker", "--burst", "--id", "threads"],
            env=worker_env(settings) | env,
            cwd=REPO_ROOT,
            capture_output=True,
            timeout=120,
        )
        assert worker.returncode == 0, worker.stderr.decode()[-2000:]
        done = store.job(job.id)
        assert done.status == "succeeded", done.error
        return int(done.result["threads"])
    finally:
        store.close()


@pytest.mark.timeout(300)
def test_fast_test_workers_use_one_torch_thread_unless_configured(settings: Settings) -> None:
    assert threads_in_a_worker(settings) == 1
    assert threads_in_a_worker(settings, ISENGARD_TORCH_THREADS="2") == 2
