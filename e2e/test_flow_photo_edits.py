"""Dataset photos edited in place from the character page: rotate, crop at a training ratio, a free crop drawn with
the pointer, and undo back to the upload; the grid follows each step."""

from __future__ import annotations

import io

import httpx
from PIL import Image
from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import create_character


def size_text(width: int, height: int, rest: str = "") -> str:
    """How the page writes a photo's size: width, a multiplication sign, height."""
    return f"{width}\N{MULTIPLICATION SIGN}{height}{rest}"


def _upload_wide_photo(base_url: str, character_id: str) -> dict[str, object]:
    picture = Image.new("RGB", (300, 200), (30, 120, 200))
    picture.paste((230, 40, 40), (0, 0, 60, 60))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    response = httpx.post(
        f"{base_url}/api/characters/{character_id}/images",
        files=[("files", ("wide.png", buffer.getvalue(), "image/png"))],
        timeout=30,
    )
    response.raise_for_status()
    return dict(response.json()["results"][0]["image"])


def test_rotate_crop_and_undo_from_the_grid(page: Page, app: RunningApp, console: ConsoleWatch) -> None:
    character = create_character(app.url, "Photo Editing Person", "phed")
    image = _upload_wide_photo(app.url, str(character["id"]))
    page.goto(f"{app.url}/characters/{character['id']}")
    card = page.get_by_test_id("image-card").filter(has=page.get_by_alt_text("wide.png"))
    expect(card).to_contain_text(size_text(300, 200))
    card.get_by_role("button", name="Edit wide.png").click()
    editor = page.get_by_test_id("photo-editor")
    size = editor.get_by_test_id("photo-size")
    expect(size).to_have_text(size_text(300, 200))

    editor.get_by_role("button", name="Rotate right").click()
    expect(size).to_have_text(size_text(200, 300, " (edited)"))
    expect(card).to_contain_text(size_text(200, 300, " · edited"))  # the grid behind the dialog follows
    # The thumbnail has a URL of its own once edited: no browser cache shows the old one.
    assert "?v=" in (card.locator("img").get_attribute("src") or "")

    editor.get_by_role("button", name="1:1").click()
    expect(editor.get_by_test_id("crop-selection")).to_be_visible()
    editor.get_by_role("button", name="Crop", exact=True).click()
    expect(size).to_have_text(size_text(200, 200, " (edited)"))

    # A free crop drawn from a quarter to three quarters of the shown photo: half its side.
    editor.get_by_role("button", name="Free").click()
    stage = editor.get_by_test_id("photo-edit-stage")
    box = stage.locator("img").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.75, steps=5)
    page.mouse.up()
    editor.get_by_role("button", name="Crop", exact=True).click()
    expect(size).to_have_text(size_text(100, 100, " (edited)"))
    stored = httpx.get(f"{app.url}/api/images/{image['id']}", timeout=10).json()
    assert stored["edit"]["rotate"] == 90 and stored["edit"]["crop"] == [50, 100, 150, 200]

    editor.get_by_role("button", name="Undo edits").click()
    expect(size).to_have_text(size_text(300, 200))
    page.get_by_role("button", name="Done").click()
    expect(card).to_contain_text(size_text(300, 200))
    expect(card).not_to_contain_text("edited")
    assert httpx.get(f"{app.url}/api/images/{image['id']}", timeout=10).json()["edit"] is None
    assert not console.errors, console.errors
