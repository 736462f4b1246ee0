"""Runs people can tell apart and manage: history with run number, steps, rank and attempts, and clone, rerun and
delete; cancel asks first and a stopped run with a checkpoint resumes as a new attempt; samples as a prompt x step
grid with a side-by-side compare; validation loss on the loss chart."""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import caption_all, create_character, start_run, trained_character, upload_photos, wait_for_job

PROMPTS = ["[trigger] smiling", "[trigger] in a red hat"]


@pytest.fixture(scope="module")
def gridded(app: RunningApp) -> dict[str, object]:
    return trained_character(
        app.url, "Grid Person", "gridp", seed=600, steps=6, sample_every=2, checkpoint_every=2, keep_checkpoints=5,
        sample_prompts=PROMPTS, sample_steps=2, sample_resolution=64,
    )  # fmt: skip


def test_samples_grid_compare_and_validation_loss(
    page: Page, app: RunningApp, console: ConsoleWatch, gridded: dict[str, object]
) -> None:
    run = dict(gridded["run"])  # type: ignore[call-overload]
    page.goto(f"{app.url}/training/{run['id']}")
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded")
    grid = page.get_by_test_id("samples-grid")
    expect(grid.get_by_test_id("samples-row")).to_have_count(2)
    expect(grid.get_by_role("columnheader")).to_contain_text(["Prompt", "step 2", "step 4", "step 6"])
    expect(grid.get_by_test_id("samples-row").first).to_contain_text("gridp smiling")
    expect(grid.get_by_test_id("samples-row").first.locator("img")).to_have_count(3)

    page.locator("#compare-prompt").select_option(label="gridp in a red hat")
    page.locator("#compare-a").select_option("2")
    page.locator("#compare-b").select_option("6")
    compare = page.get_by_test_id("samples-compare")
    expect(compare.locator("figcaption")).to_have_text([re.compile("step 2"), re.compile("step 6")])
    expect(compare.locator("img")).to_have_count(2)

    chart = page.get_by_test_id("loss-chart")
    expect(chart).to_have_attribute("data-validation-points", "2")
    expect(chart).to_contain_text("validation")
    assert console.errors == []


def test_history_shows_run_details_and_offers_clone_rerun_delete(
    page: Page, app: RunningApp, console: ConsoleWatch, gridded: dict[str, object]
) -> None:
    run = dict(gridded["run"])  # type: ignore[call-overload]
    page.goto(f"{app.url}/training/history?character={gridded['id']}")
    row = page.get_by_test_id("history-table").locator("tbody tr").filter(has_text=str(run["name"]))
    expect(row.get_by_test_id("history-run-number")).to_have_text("1")
    expect(row).to_contain_text("6 steps")
    expect(row).to_contain_text(re.compile(r"rank \d+"))
    expect(row.get_by_test_id("history-attempts")).to_have_text("1")

    row.get_by_role("link", name="Clone").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Start training")
    expect(page.locator("#train-character")).to_have_value(str(gridded["id"]))
    expect(page.locator("#cfg-steps")).to_have_value("6")
    expect(page.locator("#cfg-sample_every")).to_have_value("2")

    page.goto(f"{app.url}/training/history?character={gridded['id']}")
    row.get_by_role("button", name="Rerun").click()
    expect(page).to_have_url(re.compile(r"/training/[0-9a-f]{32}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Grid Person run 2")
    rerun_id = page.url.rsplit("/", 1)[1]
    httpx.post(f"{app.url}/api/jobs/{rerun_id}/cancel", timeout=30)
    wait_for_job(app.url, rerun_id)

    page.goto(f"{app.url}/training/history?character={gridded['id']}")
    rows = page.get_by_test_id("history-table").locator("tbody tr")
    expect(rows).to_have_count(2)
    rows.filter(has_text="run 2").get_by_role("button", name="Delete").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete run").click()
    expect(rows).to_have_count(1)
    assert httpx.get(f"{app.url}/api/jobs/{rerun_id}", timeout=30).status_code == 404
    assert console.errors == []


def test_cancel_asks_first_and_resume_continues_from_the_checkpoint(
    page: Page, app: RunningApp, console: ConsoleWatch
) -> None:
    character = create_character(app.url, "Resume Person", "resp")
    upload_photos(app.url, str(character["id"]), 4, start=650)
    caption_all(app.url, str(character["id"]))
    steps, every = 400, 20
    job = start_run(app.url, str(character["id"]), "Run to resume", steps=steps, checkpoint_every=every)
    page.goto(f"{app.url}/training/{job['id']}")
    page.wait_for_function(
        f"() => Number(document.querySelector('[data-testid=step-counter] b')?.textContent) > {every + 5}",
        timeout=300_000,
    )
    page.get_by_role("button", name="Cancel run").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("Cancel this run?")
    dialog.get_by_role("button", name="Keep training").click()
    expect(page.get_by_test_id("run-status")).to_have_text("running")
    page.get_by_role("button", name="Cancel run").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Cancel run").click()
    expect(page.get_by_test_id("run-status")).to_have_text("cancelled", timeout=60_000)
    stopped_at = len(httpx.get(f"{app.url}/api/jobs/{job['id']}/history", timeout=30).json()["loss"])

    max_attempts = httpx.get(f"{app.url}/api/jobs/{job['id']}", timeout=30).json()["max_attempts"]

    # From the click on, record what the page shows at every change, and every request it makes for this run.
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url) if api_call(request.url, job["id"]) else None)
    page.evaluate(SHOWN_RECORDER)
    started = time.monotonic()
    page.get_by_role("button", name=re.compile("^Resume from step")).click()
    note = page.get_by_test_id("resume-note")
    expect(note).to_contain_text(f"(attempt 2 of {max_attempts})", timeout=120_000)
    resumed_from = int(str(note.text_content()).split("resumed from step ")[1].split(" ")[0])
    assert every <= resumed_from <= stopped_at and resumed_from % every == 0
    expect(page.get_by_test_id("run-attempt")).to_contain_text(f"attempt 2 of {max_attempts}")
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=300_000)
    seconds = time.monotonic() - started
    expect(page.get_by_test_id("loss-chart")).to_have_attribute("data-points", str(steps))
    shown: list[dict[str, Any]] = page.evaluate("window.__shown")

    # One attempt's truth at a time: the status only moves forward, never back to an earlier attempt's.
    statuses = [entry["status"] for entry in shown]
    sequence = [status for i, status in enumerate(statuses) if i == 0 or statuses[i - 1] != status]
    assert sequence[-1] == "succeeded" and set(sequence) <= {"cancelled", "queued", "running", "succeeded"}
    order = ["cancelled", "queued", "running", "succeeded"]
    assert sequence == sorted(sequence, key=order.index) and len(sequence) == len(set(sequence)), sequence
    # Steps only move forward within an attempt; the new attempt starts from its checkpoint.
    for earlier, later in itertools.pairwise(shown):
        if earlier["attempt"] == later["attempt"]:
            assert later["step"] >= earlier["step"], (earlier, later, shown)
    # The attempt shown is the one whose steps are shown: after its loading stages (step 0) it counts on from
    # its checkpoint.
    second = [entry["step"] for entry in shown if entry["attempt"] == 2 and entry["step"] > 0]
    assert second and min(second) > resumed_from and second[-1] == steps
    # No request loop: the detail row is polled every few seconds at most, the history and the stream a few times.
    assert len(requests) <= 12 + seconds / 2, (len(requests), seconds, requests[-20:])
    assert console.errors == []


def api_call(url: str, job_id: object) -> bool:
    """A request about the run other than for one of its files (sample images, checkpoints)."""
    return f"/api/jobs/{job_id}" in url and "/artifacts/" not in url


# Samples the status badge, the attempt and the step counter on every DOM change into window.__shown.
SHOWN_RECORDER = """() => {
  window.__shown = [];
  const read = () => {
    const status = document.querySelector('[data-testid=run-status]')?.textContent?.trim() ?? '';
    const attemptText = document.querySelector('[data-testid=run-attempt]')?.textContent ?? '';
    const attempt = Number((attemptText.match(/attempt (\\d+)/) || [])[1] || 0);
    const step = Number(document.querySelector('[data-testid=step-counter] b')?.textContent ?? 0);
    const counter = document.querySelector('[data-testid=step-counter]')?.textContent ?? '';
    const last = window.__shown[window.__shown.length - 1];
    if (!last || last.status !== status || last.attempt !== attempt || last.step !== step) {
      window.__shown.push({ status, attempt, step, counter, t: Math.round(performance.now()) });
    }
  };
  read();
  new MutationObserver(read).observe(document.body, { subtree: true, childList: true, characterData: true });
}"""
