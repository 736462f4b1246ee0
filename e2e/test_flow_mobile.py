"""Phone-sized screens (390x844): the Ongoing and run pages, the LoRA library and every page in the navigation fit
the width and their controls can be reached."""

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


def test_every_page_in_the_navigation_fits_a_phone(phone: Page, app: RunningApp, console: ConsoleWatch) -> None:
    """Each page the menu leads to, with something on it: no sideways scrolling, a bar-sized top bar, its heading
    near the top; the Jobs page's actions within reach."""
    page = phone
    character = create_character(app.url, "Phone Pages", "phpg")
    upload_photos(app.url, str(character["id"]), 2, start=930)
    caption_all(app.url, str(character["id"]))
    run = start_run(app.url, str(character["id"]), "A run seen on a phone with a rather long name to wrap")
    second = start_run(app.url, str(character["id"]), "Second phone run")
    wait_for_job(app.url, str(run["id"]))
    wait_for_job(app.url, str(second["id"]))
    # Several LoRAs in the library, one with a long name that has no space to break at.
    loras = httpx.get(f"{app.url}/api/loras", params={"character_id": character["id"]}, timeout=10).json()["items"]
    assert len([lora for lora in loras if lora["source"] != "checkpoint"]) >= 2, loras
    httpx.patch(
        f"{app.url}/api/loras/{loras[0]['id']}", json={"name": "phone_pages_" + "long" * 15}, timeout=10
    ).raise_for_status()
    generation = httpx.post(
        f"{app.url}/api/generation",
        json={"prompt": "a phone-sized lighthouse", "width": 64, "height": 64, "steps": 1, "seed": 3},
        timeout=30,
    )
    generation.raise_for_status()
    wait_for_job(app.url, str(generation.json()["id"]))

    page.goto(app.url + "/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()  # settled on the page "/" leads to
    page.get_by_role("button", name="Open navigation").click()
    links = page.get_by_role("navigation").get_by_role("link")
    expect(links.first).to_be_visible()
    # Read in one go: the menu closes whenever the route changes.
    targets = [str(href) for href in links.evaluate_all("(all) => all.map((a) => a.getAttribute('href'))")]
    assert "/jobs" in targets, targets
    for target in targets:
        page.goto(app.url + target)
        heading = page.get_by_role("heading", level=1)
        expect(heading).to_be_visible()
        # Measured once the page shows its content, not its loading state (the event stream never goes idle).
        expect(page.get_by_role("status").filter(has=page.locator(".spinner"))).to_have_count(0, timeout=30_000)
        assert overflow(page) == 0, f"{target} is {overflow(page)} px wider than the phone"
        assert topbar_height(page) <= 64, target
        box = heading.bounding_box()
        assert box is not None and box["y"] < 120, target
        page.screenshot(path=screenshot_path("phone" + target.replace("/", "_")), full_page=True)

    # The LoRA library: its list itself fits (a table that scrolls sideways inside the page does not), and each
    # LoRA's actions are on the screen.
    page.goto(app.url + "/loras")
    page.locator("#lora-character").select_option(str(character["id"]))  # the app is shared: other tests' LoRAs too
    rows = page.get_by_test_id("lora-row")
    # Trained and imported LoRAs, and a checkpoint when it is the character's default (its run's recommendation).
    listed = [lora for lora in loras if lora["source"] != "checkpoint" or lora["default_reason"]]
    expect(rows).to_have_count(len(listed))
    table = page.get_by_test_id("lora-table")
    wider = int(table.evaluate("(t) => t.scrollWidth - t.parentElement.clientWidth"))
    assert wider <= 0, f"the LoRA list is {wider} px wider than its place on the phone"
    for index in range(rows.count()):
        row_box = rows.nth(index).bounding_box()
        assert row_box is not None and row_box["x"] >= 0 and row_box["x"] + row_box["width"] <= PHONE["width"]
        for name in ("Use in Generate", "Download", "Rename", "Delete"):
            control = rows.nth(index).get_by_text(name, exact=True)
            control.scroll_into_view_if_needed()
            box = control.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (index, name)
    page.screenshot(path=screenshot_path("phone_loras_several"), full_page=True)

    # The Jobs page: a row's details keep most of the width (its actions wrap under them) and stay on the screen.
    page.goto(app.url + "/jobs")
    row = page.locator(f"[data-testid=job-row][data-job-id='{run['id']}']")
    title = row.locator(".job-title").bounding_box()
    assert title is not None and title["width"] > PHONE["width"] / 2, title
    rerun = row.get_by_role("button", name="Rerun")
    rerun.scroll_into_view_if_needed()
    expect(rerun).to_be_in_viewport()
    action = rerun.bounding_box()
    assert action is not None and action["x"] >= 0 and action["x"] + action["width"] <= PHONE["width"]
    assert console.errors == []
