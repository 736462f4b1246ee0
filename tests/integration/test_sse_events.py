"""Live job events over SSE: resume with Last-Event-ID (no gap, no duplicate), replay from the database, global feed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from isengard.queue import keys
from tests.integration.queue_support import live_api, open_store, queue_settings, wait_for, worker_thread

pytestmark = pytest.mark.databases

Event = tuple[str, str, dict[str, Any]]  # (id, type, data)


def sse_events(response: httpx.Response) -> Iterator[Event]:
    """Parse a text/event-stream body as it arrives; comments (pings) are skipped."""
    entry_id, kind, data = "", "message", []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield entry_id, kind, json.loads("\n".join(data))
            entry_id, kind, data = "", "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "id":
                entry_id = value
            elif field == "event":
                kind = value
            elif field == "data":
                data.append(value)


def read(base: str, path: str, *, last_id: str | None = None, limit: int | None = None) -> list[Event]:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    events: list[Event] = []
    with httpx.stream("GET", base + path, headers=headers, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in sse_events(response):
            events.append(event)
            if limit is not None and len(events) >= limit:
                break  # the client goes away mid-stream
    return events


def test_reconnect_with_last_event_id_gets_exactly_the_missed_events(
    data_dir: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    settings = queue_settings(data_dir, redis_url)
    with open_store(settings) as store:
        with live_api(settings) as base, worker_thread(settings, "sse-worker"):
            job = store.submit("test-steps", {"steps": 30, "sleep": 0.05, "checkpoint_every": 10})
            path = f"/api/jobs/{job.id}/events"
            before = read(base, path, limit=12)
            assert store.job(job.id).status == "running", "the first client left while the job ran"
            after = read(base, path, last_id=before[-1][0])  # runs until the job's final status
            everything = read(base, path)
        ids = [e[0] for e in everything]
        assert [e[0] for e in before + after] == ids, "no gap and no duplicate"
        assert before + after == everything
        assert ids == sorted(ids, key=lambda i: tuple(int(p) for p in i.split("-"))), "ids are stream ids, in order"
        assert ids == [i.decode() for i, _ in redis_client.xrange(keys.job_events(job.id))]
        kinds = [e[1] for e in everything]
        assert kinds[0] == "status" and everything[0][2]["status"] == "queued"
        assert everything[-1][1] == "status" and everything[-1][2]["status"] == "succeeded"
        assert kinds.count("progress") == 30
        assert kinds.count("checkpoint") == 2
        steps = [e[2]["step"] for e in everything if e[1] == "progress"]
        assert steps == list(range(1, 31))


def test_finished_job_replays_from_the_database_when_redis_has_no_stream(
    data_dir: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    settings = queue_settings(data_dir, redis_url)
    with open_store(settings) as store, live_api(settings) as base:
        job = store.submit("test-steps", {"steps": 8, "sleep": 0.01, "checkpoint_every": 4})
        with worker_thread(settings, "replay-worker", burst=True):
            wait_for(lambda: store.job(job.id).status == "succeeded", 60, "job done")
        live = read(base, f"/api/jobs/{job.id}/events")
        redis_client.delete(keys.job_events(job.id))  # expired, or Redis restarted empty
        replay = read(base, f"/api/jobs/{job.id}/events")
        assert all(e[0].startswith("db-") for e in replay)
        assert replay[-1][2]["status"] == "succeeded", "the stream closes after the final status"
        # Everything the page needs survived: statuses, every loss point, checkpoints, the LoRA.
        persisted = [(e[1], e[2]) for e in live if e[1] != "progress" or e[2]["loss"] is not None]
        assert [(e[1], e[2]) for e in replay] == persisted
        resumed = read(base, f"/api/jobs/{job.id}/events", last_id=replay[4][0])
        assert resumed == replay[5:]
        history = httpx.get(f"{base}/api/jobs/{job.id}/history").json()
        assert [p["step"] for p in history["loss"]] == list(range(1, 9))
        assert [c["step"] for c in history["checkpoints"]] == [4, 8]


def test_global_feed_carries_status_changes(data_dir: Path, redis_url: str) -> None:
    settings = queue_settings(data_dir, redis_url)
    with open_store(settings) as store, live_api(settings) as base, worker_thread(settings, "feed-worker"):
        job = store.submit("test-steps", {"steps": 2})
        seen: list[str] = []
        with httpx.stream("GET", f"{base}/api/events", headers={"Last-Event-ID": "0-0"}, timeout=60) as response:
            for _id, kind, data in sse_events(response):
                assert kind == "status"
                if data["job_id"] == job.id:
                    seen.append(data["status"])
                    if data["status"] == "succeeded":
                        break
        assert seen == ["queued", "running", "succeeded"]
