"""The web app keeps its live updates through a crash of the API: `isengard up` brings a killed API back on the same
port, and the open Jobs page reconnects its event stream and shows a job submitted after the restart finish."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, Response, expect
from tests.integration.test_up import _api_pids, _start_up, _wait_healthy

from e2e.conftest import _ensure_web_bundle


def test_the_jobs_page_reconnects_after_up_restarts_a_killed_api(page: Page, tmp_path: Path) -> None:
    _ensure_web_bundle()
    proc, port = _start_up(tmp_path)
    url = f"http://127.0.0.1:{port}"
    streams: list[tuple[float, int]] = []  # (when, status) of every event stream the page opens

    def on_response(response: Response) -> None:
        if "/api/events" in response.url:
            streams.append((time.monotonic(), response.status))

    page.on("response", on_response)
    try:
        _wait_healthy(proc, port)
        page.goto(f"{url}/jobs")
        expect(page.get_by_test_id("job-list").or_(page.get_by_text("No jobs", exact=False)).first).to_be_visible()
        [api] = _api_pids(proc)
        os.kill(api, signal.SIGKILL)
        _wait_healthy(proc, port, ready=lambda: _api_pids(proc) not in ([], [api]))
        back = time.monotonic()

        job = httpx.post(
            f"{url}/api/generation",
            json={"prompt": "after the restart", "width": 64, "height": 64, "steps": 1, "seed": 3},
            timeout=30,
        )
        job.raise_for_status()
        row = page.locator(f"[data-testid=job-row][data-job-id='{job.json()['id']}']")
        # Within the page's 30 s list poll: the row comes from the reconnected stream.
        expect(row).to_have_attribute("data-status", "succeeded", timeout=25_000)
        assert any(when >= back - 20 and status == 200 for when, status in streams[1:]), streams
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except Exception:
            proc.kill()
            proc.wait()
