"""The dataset page shows what the API did: bulk caption edits at once, loose .txt captions paired with images."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import create_character, photo_bytes, upload_photos, write_photos


def test_bulk_caption_tools_refresh_the_caption_boxes(page: Page, app: RunningApp, console: ConsoleWatch) -> None:
    character = create_character(app.url, "Bulk Person", "blkp")
    upload_photos(app.url, str(character["id"]), 3, start=300)
    page.goto(f"{app.url}/characters/{character['id']}")
    boxes = page.locator("textarea.caption-edit")
    expect(boxes).to_have_count(3)
    for index in range(3):
        expect(boxes.nth(index)).to_have_value("")
    page.locator("#bulk-action").select_option("set_missing")
    page.locator("#bulk-caption").fill("a photo of [trigger] outdoors")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("3 captions updated")).to_be_visible()
    for index in range(3):
        expect(boxes.nth(index)).to_have_value("a photo of [trigger] outdoors")

    page.locator("#bulk-action").select_option("find_replace")
    page.locator("#bulk-find").fill("outdoors")
    page.locator("#bulk-replace").fill("indoors")
    page.get_by_role("button", name="Apply").click()
    for index in range(3):
        expect(boxes.nth(index)).to_have_value("a photo of [trigger] indoors")
    assert console.errors == []


def test_loose_txt_captions_pair_with_their_images(
    page: Page, app: RunningApp, console: ConsoleWatch, tmp_path: Path
) -> None:
    console.ignore.append("status of 422")  # the stray caption's request is refused, as it should be
    character = create_character(app.url, "Loose Captions", "lscp")
    photos = write_photos(tmp_path / "in", 3, start=320)
    captions = []
    for photo in photos:
        caption = photo.with_suffix(".txt")
        caption.write_text(f"[trigger] as {photo.stem}")
        captions.append(caption)
    stray = tmp_path / "in" / "nobody.txt"
    stray.write_text("a caption for no image")
    page.goto(f"{app.url}/characters/{character['id']}")
    page.get_by_test_id("file-input").set_input_files([str(p) for p in [*photos, *captions, stray]])
    summary = page.get_by_test_id("upload-summary")
    expect(summary).to_have_text("3 stored, 1 refused", timeout=60_000)
    refused = page.get_by_test_id("upload-refused")
    expect(refused).to_contain_text("nobody.txt")
    expect(refused).to_be_in_viewport()
    expect(page.get_by_test_id("image-card")).to_have_count(3)
    for photo in photos:
        expect(page.get_by_label(f"Caption of {photo.name}")).to_have_value(f"[trigger] as {photo.stem}")
    assert console.errors == []


def test_checklist_empty_state_one_range_twins_named_and_size_by_training_resolution(
    page: Page, app: RunningApp, console: ConsoleWatch, tmp_path: Path
) -> None:
    console.ignore.append("status of 422")  # the estimate refuses the uncaptioned dataset, as it should
    character = create_character(app.url, "Checklist Person", "chkp")
    page.goto(f"{app.url}/characters/{character['id']}")
    checklist = page.get_by_test_id("dataset-checklist")
    expect(checklist).to_contain_text("No images yet")
    expect(checklist.locator(".check-icon.ok")).to_have_count(0)
    expect(checklist).to_contain_text("10-30 varied photos")

    # Two photos, one a resized copy of the other: a near duplicate that names its twin.
    original = tmp_path / "beach.png"
    original.write_bytes(photo_bytes(801))
    with Image.open(original) as image:
        image.resize((300, 300)).save(tmp_path / "beach_again.png")
    page.get_by_test_id("file-input").set_input_files([str(original), str(tmp_path / "beach_again.png")])
    expect(page.get_by_test_id("upload-summary")).to_have_text("2 stored, 0 refused", timeout=60_000)
    expect(checklist).to_contain_text("beach_again.png looks like beach.png")
    expect(checklist).to_contain_text("fewer than the 10-30")

    # On Start training, the size check follows the resolution being chosen.
    page.goto(f"{app.url}/training/new?character={character['id']}")
    page.locator("#cfg-resolutions").fill("512")
    expect(page.get_by_test_id("dataset-checklist")).to_contain_text("2 smaller than 512 px")
    page.locator("#cfg-resolutions").fill("128")
    expect(page.get_by_test_id("dataset-checklist")).to_contain_text("All at least 128 px")
    assert console.errors == []


def test_dataset_thumbnails_open_the_lightbox_the_other_images_use(
    page: Page, app: RunningApp, console: ConsoleWatch
) -> None:
    character = create_character(app.url, "Lightbox Person", "lbxp")
    upload_photos(app.url, str(character["id"]), 2, start=740)
    page.goto(f"{app.url}/characters/{character['id']}")
    cards = page.get_by_test_id("image-card")
    expect(cards).to_have_count(2)
    cards.first.get_by_role("button", name=re.compile(r"^Open .* large$")).click()
    shown = page.get_by_test_id("lightbox-image")
    expect(shown).to_be_visible()
    first = shown.get_attribute("src")
    page.keyboard.press("ArrowRight")
    expect(shown).not_to_have_attribute("src", str(first))
    assert len(page.context.pages) == 1  # no new tab
    page.keyboard.press("Escape")
    expect(shown).to_have_count(0)
    assert console.errors == []
