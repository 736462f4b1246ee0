"""Phone-sized screens (390x844): the Ongoing and run pages fit the width and their controls can be reached."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import caption_all, create_character, screenshot_path, start_run, upload_photos, wait_for_job

PHONE = {"width": 390, "height": 844}


@pytest.fixture()
def phone(browser: Browser, console: ConsoleWatch) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    yield page
    context.close()


def overflow(page: Page) -> int:
    """How far the page is wider than the screen (0: no sideways scrolling)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def topbar_height(page: Page) -> float:
    box = page.locator(".topbar").bounding_box()
    assert box is not None
    return float(box["height"])


def test_ongoing_and_run_pages_on_a_phone(phone: Page, app: RunningApp, console: ConsoleWatch) -> None:
    page = phone
    character = create_character(app.url, "Phone Person", "phnp")
    upload_photos(app.url, str(character["id"]), 4, start=900)
    caption_all(app.url, str(character["id"]))
    job = start_run(app.url, str(character["id"]), "Run on a phone", steps=20_000, checkpoint_every=0)
    try:
        page.goto(app.url + "/training/ongoing")
        card = page.get_by_test_id("run-card").filter(has_text="Run on a phone")
        expect(card).to_contain_text("running", timeout=120_000)
        assert overflow(page) == 0
        # The top bar stays a bar: a short page must not stretch it over a third of the screen.
        assert topbar_height(page) <= 64
        heading = page.get_by_role("heading", level=1).bounding_box()
        assert heading is not None and heading["y"] < 120
        page.screenshot(path=screenshot_path("phone_ongoing"), full_page=True)
        cancel = card.get_by_role("button", name="Cancel")
        cancel.scroll_into_view_if_needed()
        expect(cancel).to_be_in_viewport()
        box = cancel.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

        card.get_by_role("link", name="Open").click()
        expect(page.get_by_test_id("run-status")).to_have_text("running")
        page.wait_for_function("() => Number(document.querySelector('[data-testid=loss-chart]')?.dataset.points) > 0")
        assert overflow(page) == 0
        assert topbar_height(page) <= 64
        chart = page.get_by_test_id("loss-chart").locator("svg")
        chart_box = chart.bounding_box()
        assert chart_box is not None and chart_box["width"] <= PHONE["width"]
        for name in ("Cancel run",):
            button = page.get_by_role("button", name=name)
            button.scroll_into_view_if_needed()
            expect(button).to_be_in_viewport()
        page.screenshot(path=screenshot_path("phone_run"), full_page=True)
        page.get_by_role("tab", name="Logs").click()
        expect(page.get_by_test_id("logs-panel")).to_be_visible()
        assert overflow(page) == 0
        # The menu opens from the top bar on a phone.
        page.get_by_role("button", name="Open navigation").click()
        expect(page.get_by_role("link", name="Ongoing")).to_be_in_viewport()
    finally:
        httpx.post(f"{app.url}/api/jobs/{job['id']}/cancel", timeout=30)
        wait_for_job(app.url, str(job["id"]))
    assert console.errors == []
