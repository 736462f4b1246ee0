"""What a person sees when things go wrong: rejected uploads with reasons, the API down, a bad form."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp, start_app, stop_app
from e2e.helpers import create_character, photo_bytes, screenshot_path


def test_bad_uploads_show_their_reasons(page: Page, app: RunningApp, tmp_path: Path) -> None:
    character = create_character(app.url, "Upload Edge Cases")
    good = tmp_path / "good.png"
    good.write_bytes(photo_bytes(101))
    fake = tmp_path / "not_an_image.png"
    fake.write_bytes(b"this is plain text pretending to be a PNG")
    duplicate = tmp_path / "again.png"
    duplicate.write_bytes(photo_bytes(101))
    page.goto(f"{app.url}/characters/{character['id']}")
    page.get_by_test_id("file-input").set_input_files([str(good), str(fake)])
    expect(page.get_by_test_id("upload-summary")).to_have_text("1 stored, 1 refused", timeout=30_000)
    rejected = page.get_by_test_id("upload-result").filter(has_text="rejected")
    expect(rejected).to_have_count(1)
    expect(rejected).to_contain_text("not_an_image.png")
    page.get_by_test_id("file-input").set_input_files([str(duplicate)])
    expect(page.get_by_test_id("upload-result").filter(has_text="duplicate")).to_have_count(1, timeout=30_000)
    expect(page.get_by_test_id("image-card")).to_have_count(1)
    page.screenshot(path=screenshot_path("edge_bad_uploads"), full_page=True)


def test_form_errors_are_readable(page: Page, app: RunningApp) -> None:
    create_character(app.url, "Taken Name")
    page.goto(app.url + "/characters")
    page.get_by_role("button", name="+ New character").click()
    page.get_by_label("Name").fill("taken name")
    page.get_by_role("button", name="Create character").click()
    alert = page.get_by_role("alert").filter(has_text="Could not save")
    expect(alert).to_be_visible()
    assert "{" not in alert.inner_text()  # a sentence, not a JSON dump


def test_deleting_a_character_asks_first(page: Page, app: RunningApp, console: ConsoleWatch) -> None:
    character = create_character(app.url, "To Be Deleted")
    page.goto(f"{app.url}/characters/{character['id']}")
    page.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("cannot be undone")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("To Be Deleted")
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete character").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Characters")
    expect(page.get_by_text("To Be Deleted")).to_have_count(0)
    assert console.errors == []


def test_api_down_shows_a_message_not_a_blank_page(page: Page, tmp_path: Path) -> None:
    own = start_app(tmp_path)
    try:
        page.goto(own.url + "/dataset")
        expect(page.get_by_role("heading", level=1)).to_have_text("Dataset")
        page.get_by_role("navigation").get_by_role("link", name="Characters").click()
        expect(page.get_by_test_id("health-panel")).to_contain_text("Workers")
    finally:
        stop_app(own)
    page.get_by_role("navigation").get_by_role("link", name="Dataset").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dataset")
    expect(page.get_by_test_id("health-panel")).to_contain_text("API unreachable", timeout=20_000)
    expect(page.get_by_text("Cannot reach the Isengard server").first).to_be_visible(timeout=20_000)
    page.screenshot(path=screenshot_path("edge_api_down"), full_page=True)
