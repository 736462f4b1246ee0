"""Events a worker publishes while Redis is down are not lost: they wait in the worker, in order, and go out when
Redis is back, so the list pages' stream learns that a job finished during the outage and a job's live stream has
no step missing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from isengard.api.services.jobs import events as job_events
from isengard.redis_server import EmbeddedRedis
from tests.integration.queue_support import live_api, open_store, queue_settings, wait_for, worker_thread
from tests.integration.test_sse_events import Event, sse_events

STEPS = 40


def _follow(url: str, events: list[Event], stop: threading.Event) -> None:
    while not stop.is_set():  # reconnect as a browser's EventSource does, from the last id seen
        headers = {"Last-Event-ID": events[-1][0]} if events else {}
        try:
            with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=5)) as response:
                for event in sse_events(response):
                    events.append(event)
                    if stop.is_set():
                        return
        except httpx.HTTPError:
            time.sleep(0.2)


def test_events_published_during_an_outage_arrive_after_it(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_events, "IDLE_CHECK_SECONDS", 1.0)
    server = EmbeddedRedis(tmp_path / "redis", persist=True).start()
    stop = threading.Event()
    try:
        settings = queue_settings(data_dir, server.url)
        with open_store(settings) as store, live_api(settings) as base:
            listing: list[Event] = []
            lister = threading.Thread(target=_follow, args=(f"{base}/api/events", listing, stop), daemon=True)
            lister.start()
            job = store.submit("test-steps", {"steps": STEPS, "sleep": 0.05})
            events: list[Event] = []
            reader = threading.Thread(
                target=_follow, args=(f"{base}/api/jobs/{job.id}/events", events, stop), daemon=True
            )
            reader.start()
            with worker_thread(settings, "outage-worker"):
                wait_for(lambda: sum(e[1] == "progress" for e in events) >= 3, 60, "the client sees progress")
                server.kill()  # kill -9: the job goes on publishing into the outage
                wait_for(lambda: store.job(job.id).status == "succeeded", 60, "the job finishes without Redis")
                time.sleep(1.0)
                server = EmbeddedRedis(tmp_path / "redis", port=server.port, persist=True).start()

                def finished_in_listing() -> bool:
                    return any(
                        e[1] == "status" and e[2].get("job_id") == job.id and e[2]["status"] == "succeeded"
                        for e in listing
                    )

                wait_for(finished_in_listing, 60, "the list stream delivers the status reached during the outage")
                wait_for(lambda: any(e[1] == "status" and e[2]["status"] == "succeeded" for e in events), 60, "end")
        steps = [e[2]["step"] for e in events if e[1] == "progress"]
        assert steps == sorted(steps), "no step out of order"
        assert set(range(steps[0], STEPS + 1)) <= set(steps), f"no hole in the live chart: {steps}"
    finally:
        stop.set()
        server.stop()
