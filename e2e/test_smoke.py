"""Every page loads in a real browser without console errors, and the layout reaches every page."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import create_character, screenshot_path, upload_photos

PAGES = [
    ("/characters", "Characters"),
    ("/dataset", "Dataset"),
    ("/training/new", "Start training"),
    ("/training/ongoing", "Ongoing training"),
    ("/training/history", "Training history"),
    ("/generate", "Generate images"),
    ("/video", "Video"),
]


@pytest.fixture(scope="module")
def seeded(app: RunningApp) -> dict[str, object]:
    character = create_character(app.url, "Smoke Test Person", "smkp")
    upload_photos(app.url, str(character["id"]), 3)
    # Captioned, so the training form's estimate is valid (uncaptioned datasets are refused with a reason).
    httpx.post(
        f"{app.url}/api/characters/{character['id']}/captions/bulk",
        json={"action": "set_missing", "caption": "a photo of [trigger]"},
        timeout=10,
    ).raise_for_status()
    return character


@pytest.mark.parametrize(("path", "heading"), PAGES)
def test_page_loads_without_console_errors(
    page: Page, app: RunningApp, console: ConsoleWatch, seeded: dict[str, object], path: str, heading: str
) -> None:
    page.goto(app.url + path)
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.get_by_test_id("health-panel")).to_contain_text("Database")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=screenshot_path("smoke" + path.replace("/", "_")), full_page=True)
    assert console.errors == []


def test_character_page_loads(page: Page, app: RunningApp, console: ConsoleWatch, seeded: dict[str, object]) -> None:
    page.goto(f"{app.url}/characters/{seeded['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Smoke Test Person")
    expect(page.get_by_test_id("image-card")).to_have_count(3)
    expect(page.get_by_test_id("dataset-checklist")).to_be_visible()
    page.screenshot(path=screenshot_path("smoke_character"), full_page=True)
    assert console.errors == []


def test_navigation_reaches_every_page_by_keyboard(page: Page, app: RunningApp, console: ConsoleWatch) -> None:
    page.goto(app.url + "/characters")
    nav = page.get_by_role("navigation")
    for label, heading in [
        ("Dataset", "Dataset"),
        ("Start training", "Start training"),
        ("Ongoing", "Ongoing training"),
        ("History", "Training history"),
        ("Images", "Generate images"),
        ("Video", "Video"),
        ("Characters", "Characters"),
    ]:
        nav.get_by_role("link", name=label).focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    assert console.errors == []


def test_unknown_page_shows_a_message(page: Page, app: RunningApp) -> None:
    page.goto(app.url + "/no/such/page")
    expect(page.get_by_text("This page does not exist")).to_be_visible()


def test_narrow_window_has_a_menu(page: Page, app: RunningApp, console: ConsoleWatch) -> None:
    page.set_viewport_size({"width": 420, "height": 860})
    page.goto(app.url + "/characters")
    expect(page.get_by_role("navigation")).to_be_hidden()
    page.get_by_role("button", name="Open navigation").click()
    page.get_by_role("navigation").get_by_role("link", name="Dataset").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dataset")
    page.screenshot(path=screenshot_path("narrow_dataset"), full_page=True)
    assert console.errors == []


def test_health_panel_shows_database_redis_and_worker_up(page: Page, app: RunningApp, console: ConsoleWatch) -> None:
    # What a person sees after `make run`: the panel reports every part of the running system as up.
    page.goto(app.url + "/")
    expect(page.get_by_test_id("health-database")).to_contain_text("up")
    expect(page.get_by_test_id("health-redis")).to_contain_text("up")
    expect(page.get_by_test_id("health-workers")).to_contain_text("1 up")
    expect(page.get_by_test_id("health-workers").locator(".dot.ok")).to_have_count(1)
    assert console.errors == []
