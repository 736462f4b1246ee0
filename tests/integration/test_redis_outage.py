"""Redis goes away and comes back: live clients still learn how their job ended, and a quiet system logs nothing."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from isengard.api.services.jobs import events as job_events
from isengard.queue.fanout import READ_BLOCK_MS
from isengard.redis_server import EmbeddedRedis
from tests.integration.queue_support import live_api, open_store, queue_settings, wait_for, worker_thread
from tests.integration.test_sse_events import Event, sse_events


def _follow(url: str, events: list[Event], done: threading.Event) -> None:
    try:
        with httpx.stream("GET", url, timeout=httpx.Timeout(10, read=90)) as response:
            for event in sse_events(response):
                events.append(event)
    finally:
        done.set()


def test_a_job_that_finishes_while_redis_is_down_ends_its_live_stream_with_its_status(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Quick idle checks: the client notices the outage's end within a second, not half a minute.
    monkeypatch.setattr(job_events, "IDLE_CHECK_SECONDS", 1.0)
    server = EmbeddedRedis(tmp_path / "redis", persist=True).start()
    try:
        settings = queue_settings(data_dir, server.url)
        with open_store(settings) as store, live_api(settings) as base:
            job = store.submit("test-steps", {"steps": 40, "sleep": 0.05})
            events: list[Event] = []
            done = threading.Event()
            reader = threading.Thread(target=_follow, args=(f"{base}/api/jobs/{job.id}/events", events, done))
            reader.start()
            with worker_thread(settings, "outage-worker"):
                wait_for(lambda: sum(e[1] == "progress" for e in events) >= 3, 60, "the client sees progress")
                server.kill()  # kill -9: the job's last events and its final status cannot reach Redis
                wait_for(lambda: store.job(job.id).status == "succeeded", 60, "the job finishes without Redis")
                time.sleep(1.5)
                server = EmbeddedRedis(tmp_path / "redis", port=server.port, persist=True).start()
                assert done.wait(30), "the live stream ended"
            reader.join(timeout=10)
        assert events[-1][1] == "status" and events[-1][2]["status"] == "succeeded"
        assert not any(e[1] == "status" and e[2]["status"] == "succeeded" for e in events[:-1])
    finally:
        server.stop()


def test_a_quiet_event_stream_logs_no_read_failures(
    data_dir: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = queue_settings(data_dir, redis_url)
    with open_store(settings) as store, live_api(settings) as base, caplog.at_level(logging.WARNING):
        job = store.submit("test-steps", {"steps": 2})  # stays queued: no worker runs it
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"GET /api/jobs/{job.id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            assert b"event: status" in sock.recv(65536) or b"event: status" in sock.recv(65536)
            # Past one whole blocking read and then some: a socket timeout shorter than the read shows by now.
            time.sleep(READ_BLOCK_MS / 1000 + 3)
        failures = [rec for rec in caplog.records if "event stream read failed" in rec.getMessage()]
        assert failures == []
