"""A worker killed mid-run is visible: the run page says its worker was lost, then that it resumed, and where from.

Its own app with a short lease and heartbeat, so the takeover happens in seconds rather than half a minute.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import caption_all, create_character, start_run, upload_photos

STEPS = 300
EVERY = 20


def kill_worker(app: RunningApp) -> int:
    """kill -9 of the worker process, by the pid its heartbeat reports."""
    workers = httpx.get(f"{app.url}/api/health", timeout=10).json()["workers"]["workers"]
    pid = int(workers[0]["pid"])
    os.kill(pid, signal.SIGKILL)
    return pid


def test_a_killed_worker_shows_lost_then_resumed(
    page: Page, takeover_app: RunningApp, console: ConsoleWatch, tmp_path: Path
) -> None:
    app = takeover_app
    character = create_character(app.url, "Kill Person", "killp")
    upload_photos(app.url, str(character["id"]), 4, start=400)
    caption_all(app.url, str(character["id"]))
    job = start_run(app.url, str(character["id"]), "Run to kill", steps=STEPS, checkpoint_every=EVERY)
    page.goto(f"{app.url}/training/{job['id']}")
    expect(page.get_by_test_id("run-attempt")).to_have_text("attempt 1 of 3", timeout=120_000)
    # Past a checkpoint, so the next attempt has somewhere to resume from.
    page.wait_for_function(
        f"() => Number(document.querySelector('[data-testid=step-counter] b')?.textContent) > {EVERY + 5}",
        timeout=300_000,
    )
    kill_worker(app)
    expect(page.get_by_test_id("worker-state")).to_have_text("worker lost — waiting to resume", timeout=30_000)
    expect(page.get_by_text("it/s")).to_have_count(0)
    note = page.get_by_test_id("resume-note")
    expect(note).to_contain_text("(attempt 2 of 3)", timeout=120_000)
    expect(note).to_contain_text("resumed from step")
    expect(page.get_by_test_id("worker-state")).to_have_count(0)
    expect(page.get_by_test_id("run-attempt")).to_have_text("attempt 2 of 3")
    resumed_from = int(str(note.text_content()).split("resumed from step ")[1].split(" ")[0])
    assert resumed_from >= EVERY and resumed_from % EVERY == 0
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=300_000)
    # The loss curve continues across the attempts: one point per step.
    expect(page.get_by_test_id("loss-chart")).to_have_attribute("data-points", str(STEPS))

    page.goto(f"{app.url}/training/history")
    row = page.get_by_test_id("history-table").locator("tr", has_text="Run to kill")
    expect(row.get_by_test_id("history-attempts")).to_have_text("2")
    assert console.errors == []
