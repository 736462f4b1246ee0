"""The global event feed resumes after `?since=<id>` as it does after a Last-Event-ID header: when the browser's
EventSource gives up, the web app reconnects by hand and can only pass the last id in the URL."""

from __future__ import annotations

import json
import time

import httpx

from e2e.conftest import RunningApp

Event = tuple[str, dict[str, object]]  # (SSE id, data)


def job_events_from_feed(url: str, job_id: str) -> list[Event]:
    """One job's events from the global feed at `url`, up to its final status."""
    mine: list[Event] = []
    entry_id, data = "", ""
    deadline = time.monotonic() + 45  # pings arrive every 15 s, so a feed that never resumes still ends the loop
    with httpx.stream("GET", url, timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if time.monotonic() > deadline:
                break
            if line.startswith("id:"):
                entry_id = line[3:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
            elif line == "" and data:
                event = json.loads(data)
                data = ""
                if event.get("job_id") == job_id:
                    mine.append((entry_id, event))
                    if event.get("status") in ("succeeded", "failed", "cancelled"):
                        break
    return mine


def test_global_feed_resumes_after_since(app: RunningApp) -> None:
    response = httpx.post(
        f"{app.url}/api/generation",
        json={"prompt": "a feed test", "width": 64, "height": 64, "steps": 1, "seed": 1},
        timeout=30,
    )
    response.raise_for_status()
    job_id = response.json()["id"]
    deadline = time.monotonic() + 120
    while httpx.get(f"{app.url}/api/jobs/{job_id}", timeout=10).json()["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, "the generation did not finish"
        time.sleep(0.5)  # polling the API, not a page

    ours = job_events_from_feed(f"{app.url}/api/events?since=0-0", job_id)
    assert [data["status"] for _id, data in ours] == ["queued", "running", "succeeded"]
    resumed = job_events_from_feed(f"{app.url}/api/events?since={ours[0][0]}", job_id)
    assert resumed == ours[1:]
