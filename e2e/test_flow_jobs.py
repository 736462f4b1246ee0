"""The Jobs page: every kind of job in one list, live; a queued generation cancelled from it, filters, rerun,
a run cancelled after a confirmation, and an ended job deleted."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import (
    caption_all,
    create_character,
    queue_generation,
    screenshot_path,
    start_run,
    upload_photos,
    wait_for_job,
)


def test_jobs_page_cancels_filters_reruns_and_deletes(page: Page, app: RunningApp, console: ConsoleWatch) -> None:
    character = create_character(app.url, "Jobs Person", "jbsp")
    upload_photos(app.url, str(character["id"]), 4, start=950)
    caption_all(app.url, str(character["id"]))
    # A long run keeps the worker busy, so the generation waits in the queue behind it.
    run = start_run(app.url, str(character["id"]), "Run behind the queue", steps=20_000, checkpoint_every=0)
    try:
        page.goto(app.url + "/")
        page.get_by_role("navigation").get_by_role("link", name="Jobs").click()
        expect(page).to_have_url(app.url + "/jobs")
        run_row = page.locator(f"[data-testid=job-row][data-job-id='{run['id']}']")
        expect(run_row).to_have_attribute("data-status", "running", timeout=120_000)
        expect(run_row.get_by_test_id("job-progress")).to_contain_text("/20000", timeout=60_000)

        generation = queue_generation(app.url, "a lighthouse for the queue")
        gen_row = page.locator(f"[data-testid=job-row][data-job-id='{generation['id']}']")
        # Listed live (no reload), with its place in the queue.
        expect(gen_row).to_have_attribute("data-status", "queued")
        expect(gen_row.get_by_test_id("job-queue")).to_contain_text("#1 in the generation queue")
        page.screenshot(path=screenshot_path("jobs_page"), full_page=True)

        # Cancelling a generation needs no confirmation; the row says so at once.
        gen_row.get_by_role("button", name="Cancel").click()
        expect(gen_row).to_have_attribute("data-status", "cancelled")
        assert httpx.get(f"{app.url}/api/jobs/{generation['id']}", timeout=10).json()["status"] == "cancelled"

        # Filters: kind, then status; the URL keeps them.
        page.get_by_label("Kind").select_option("generation")
        expect(run_row).to_have_count(0)
        expect(gen_row).to_be_visible()
        page.get_by_label("Status").select_option("cancelled")
        expect(page).to_have_url(app.url + "/jobs?kind=generation&status=cancelled")
        expect(page.locator("[data-testid=job-row][data-status=queued]")).to_have_count(0)

        # Rerun: a new generation job with the same settings, queued behind the run.
        gen_row.get_by_role("button", name="Rerun").click()
        page.get_by_label("Status").select_option("")
        rerun_row = page.locator("[data-testid=job-row][data-kind=generation][data-status=queued]")
        expect(rerun_row).to_have_count(1)
        expect(rerun_row).to_contain_text("a lighthouse for the queue")
        rerun_id = rerun_row.get_attribute("data-job-id")
        assert rerun_id and rerun_id != generation["id"]

        # Cancelling the run asks first; once it stops, the rerun generation runs and succeeds, live.
        page.get_by_label("Kind").select_option("")
        run_row.get_by_role("button", name="Cancel").click()
        dialog = page.get_by_role("alertdialog")
        expect(dialog).to_contain_text("Cancel Run behind the queue?")
        dialog.get_by_role("button", name="Cancel run").click()
        expect(run_row).to_have_attribute("data-status", "cancelled", timeout=60_000)
        rerun_done = page.locator(f"[data-testid=job-row][data-job-id='{rerun_id}']")
        expect(rerun_done).to_have_attribute("data-status", "succeeded", timeout=120_000)

        # Deleting an ended job asks first and takes it off the list.
        gen_row.get_by_role("button", name="Delete").click()
        page.get_by_role("alertdialog").get_by_role("button", name="Delete job").click()
        expect(gen_row).to_have_count(0)
        assert httpx.get(f"{app.url}/api/jobs/{generation['id']}", timeout=10).status_code == 404
        assert not console.errors, console.errors
    finally:
        httpx.post(f"{app.url}/api/jobs/{run['id']}/cancel", timeout=10)
        wait_for_job(app.url, str(run["id"]), timeout_s=60)
