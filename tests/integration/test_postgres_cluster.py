"""Scaled out on one PostgreSQL: two API processes and three workers share the database and one Redis; names stay
unique across the APIs, every job runs exactly once, and both APIs tell the same story."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from isengard.domain import JobStatus
from isengard.redis_server import free_port
from tests.conftest import fresh_postgres_database
from tests.integration.queue_support import (
    REPO_ROOT,
    open_store,
    queue_settings,
    start_worker_process,
    stop_process,
    trace_lines,
    wait_for,
    worker_env,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]

JOBS = 9


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/jobs", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture()
def postgres_database(postgres_url: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_url) as url:
        yield url


def test_two_apis_and_three_workers_share_one_postgres(
    data_dir: Path, redis_url: str, postgres_database: str, tmp_path: Path
) -> None:
    settings = queue_settings(data_dir, redis_url, database_url=postgres_database)
    with open_store(settings) as store:
        processes: list[subprocess.Popen[bytes]] = []
        try:
            processes += [start_worker_process(settings, f"pg-w{i}", log_path=tmp_path / f"w{i}.log") for i in range(3)]
            bases = []
            for _ in range(2):
                port = free_port()
                env = worker_env(settings, log_level="WARNING") | {"ISENGARD_PORT": str(port)}
                command = [sys.executable, "-m", "isengard.cli", "api"]
                processes.append(subprocess.Popen(command, env=env, cwd=REPO_ROOT, stderr=subprocess.DEVNULL))
                bases.append(f"http://127.0.0.1:{port}")
            for base in bases:
                wait_for(lambda base=base: _up(base), 90, f"the API at {base}")

            # The same name sent to both APIs at once: the database keeps exactly one.
            with ThreadPoolExecutor(len(bases)) as pool:
                statuses = sorted(
                    pool.map(lambda b: httpx.post(f"{b}/api/characters", json={"name": "Twin"}).status_code, bases)
                )
            assert statuses == [201, 409]

            jobs = [store.submit("test-steps", {"steps": 4, "sleep": 0.1}) for _ in range(JOBS)]
            wait_for(lambda: all(JobStatus(store.job(j.id).status).is_final for j in jobs), 180, "all jobs done", 0.3)
            finished = [store.job(j.id) for j in jobs]
            assert [j.status for j in finished] == ["succeeded"] * JOBS
            assert len({j.worker_id for j in finished}) >= 2, "the workers shared the queue"
            for job in finished:
                lines = trace_lines(settings, job)
                assert sum(line.startswith("start") for line in lines) == 1, lines
                assert sum(line.startswith("done") for line in lines) == 1, lines

            # Both APIs read the same rows.
            views = [
                sorted((j["id"], j["status"]) for j in httpx.get(f"{b}/api/jobs", params={"limit": 50}).json()["items"])
                for b in bases
            ]
            assert views[0] == views[1] == sorted((j.id, "succeeded") for j in finished)
            characters = [httpx.get(f"{b}/api/characters").json() for b in bases]
            assert [c["name"] for c in characters[0]] == [c["name"] for c in characters[1]] == ["Twin"]
        finally:
            for process in processes:
                stop_process(process)
