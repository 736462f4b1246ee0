"""Crash tests for the services around the workers: the API killed while SSE clients listen, Redis restarted
empty. Real processes, real Redis; every job still reaches its final state and SSE clients miss nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from isengard.config import Settings
from isengard.queue import keys
from isengard.redis_server import EmbeddedRedis, free_port
from tests.integration.queue_support import (
    REPO_ROOT,
    JobStore,
    migrated_queue_settings,
    stop_process,
    wait_for,
    worker_env,
)
from tests.integration.test_crash_worker import Workers, assert_consistent, wait_final

pytestmark = [pytest.mark.timeout(180), pytest.mark.databases]


def start_api(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = worker_env(settings) | {"ISENGARD_PORT": str(port), "ISENGARD_HOST": "127.0.0.1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "isengard.cli", "api"],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        start_new_session=True,
    )

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/auth/session", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 60, "the API did not start", interval=0.2)
    return process


def read_sse(url: str, last_event_id: str | None, stop_after: int | None) -> tuple[list[str], list[dict[str, str]]]:
    """Read one SSE connection: the ids and events seen, until the stream ends or `stop_after` events."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    ids: list[str] = []
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    try:
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(30, read=30)) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if not line:
                    if "id" in current:
                        ids.append(current["id"])
                        events.append(current)
                        if stop_after is not None and len(ids) >= stop_after:
                            return ids, events
                    current = {}
                    continue
                field, _, value = line.partition(":")
                current[field] = value.strip()
    except httpx.HTTPError:
        pass  # the server went away mid-stream: what was read so far counts
    return ids, events


@pytest.fixture()
def settings(data_dir: Path, redis_url: str) -> Settings:
    return migrated_queue_settings(data_dir, redis_url, min_free_bytes=0)


@pytest.fixture()
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(settings, tmp_path)
    yield started
    started.stop_all()


def test_api_killed_while_sse_clients_listen_they_resume_without_a_gap(
    settings: Settings, workers: Workers, tmp_path: Path
) -> None:
    store = JobStore(settings)
    try:
        job = store.submit("test-steps", {"steps": 60, "sleep": 0.05, "checkpoint_every": 20})
        port = free_port()
        api = start_api(settings, port, tmp_path / "api.log")
        workers.start("sse-w1")
        url = f"http://127.0.0.1:{port}/api/jobs/{job.id}/events"
        first_ids, _ = read_sse(url, None, stop_after=10)
        assert len(first_ids) == 10
        os.killpg(api.pid, signal.SIGKILL)
        api.wait(timeout=10)

        api = start_api(settings, port, tmp_path / "api.log")
        try:
            rest_ids, rest = read_sse(url, first_ids[-1], stop_after=None)
        finally:
            stop_process(api)
        done = wait_final(store, job.id)
        assert done.status == "succeeded"
        # The client saw every event of the job's stream exactly once, in order.
        client = redis.Redis.from_url(str(settings.redis_url), decode_responses=True)
        stream_ids = [str(entry_id) for entry_id, _ in client.xrange(keys.job_events(job.id)) or []]
        client.close()
        assert first_ids + rest_ids == stream_ids
        last = json.loads(rest[-1]["data"])
        assert last["status"] == "succeeded"
    finally:
        store.close()


def test_redis_restarted_empty_loses_no_job(settings: Settings, tmp_path: Path) -> None:
    # A private Redis this test can kill and bring back empty on the same port.
    private = EmbeddedRedis(tmp_path / "redis-a", persist=False).start()
    port = private.port
    own = settings.model_copy(update={"redis_url": private.url})
    store = JobStore(own)
    workers = Workers(own, tmp_path)
    api: subprocess.Popen[bytes] | None = None
    try:
        api_port = free_port()
        api = start_api(own, api_port, tmp_path / "api.log")
        jobs = [store.submit("test-steps", {"steps": 5, "sleep": 0.02}) for _ in range(4)]
        private.stop()  # every queue entry and event is gone with it
        replacement = EmbeddedRedis(tmp_path / "redis-b", port=port, persist=False).start()
        private = replacement
        workers.start("redis-w1")
        # The API's recovery re-enqueues queued jobs the new Redis does not hold; the worker re-creates its groups.
        for job in jobs:
            done = wait_final(store, job.id, timeout=120)
            assert done.status == "succeeded", done.error
            assert_consistent(own, store, job.id)
        # Status is served from the database even though the events from before the restart are gone.
        listed = httpx.get(f"http://127.0.0.1:{api_port}/api/jobs/{jobs[0].id}", timeout=5)
        assert listed.json()["status"] == "succeeded"
    finally:
        workers.stop_all()
        if api is not None:
            stop_process(api)
        store.close()
        private.stop()
