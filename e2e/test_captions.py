"""Captioning from the character page in a real browser: "Caption with AI" runs a caption job in the app's real
worker (the tiny Qwen3-VL), progress shows live, the new captions appear in the grid, and the caption linter's
findings sit beside each caption with their one-click fixes; "Regenerate caption" replaces one image's caption."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import create_character, screenshot_path, upload_photos

CAPTION_TIMEOUT_MS = 180_000  # the worker loads the captioning model on its first caption job
HAND_WRITTEN = "a young woman with blue eyes in a red coat"


def _images(app: RunningApp, character_id: str) -> list[dict[str, object]]:
    page = httpx.get(f"{app.url}/api/images", params={"character_id": character_id}, timeout=10).json()
    return sorted(page["items"], key=lambda item: str(item["original_name"]))


def test_caption_a_dataset_from_the_character_page(page: Page, app: RunningApp, console: ConsoleWatch) -> None:
    character = create_character(app.url, "Caption Person", "cptnp")
    character_id = str(character["id"])
    upload_photos(app.url, character_id, 3, start=70)
    first = _images(app, character_id)[0]
    httpx.patch(f"{app.url}/api/images/{first['id']}", json={"caption": HAND_WRITTEN}, timeout=10).raise_for_status()

    page.goto(f"{app.url}/characters/{character_id}")
    panel = page.get_by_test_id("caption-with-ai")
    expect(panel).to_be_visible()
    # The hand-written caption breaks two rules: no trigger word, and it describes who the character is.
    first_card = page.get_by_test_id("image-card").filter(has=page.locator(f"img[alt='{first['original_name']}']"))
    expect(first_card.locator("[data-testid=caption-finding][data-kind=missing_trigger]")).to_be_visible()
    identity = first_card.locator("[data-testid=caption-finding][data-kind=identity]")
    expect(identity).to_contain_text("young, blue eyes")
    expect(page.get_by_test_id("dataset-checklist")).to_contain_text("2 without a caption")

    # Caption the two images without a caption, with a prefix, and watch it go.
    panel.get_by_label("Prefix").fill("photo of")
    panel.get_by_role("button", name="Caption with AI").click()
    progress = page.get_by_test_id("caption-progress")
    expect(progress).to_contain_text("2 / 2 images", timeout=CAPTION_TIMEOUT_MS)
    expect(progress).to_contain_text("succeeded", timeout=CAPTION_TIMEOUT_MS)
    expect(progress).to_contain_text("2 captioned")

    images = _images(app, character_id)
    assert images[0]["caption"] == HAND_WRITTEN, "an existing caption is never replaced unless asked"
    for image in images[1:]:
        caption = str(image["caption"])
        assert caption.startswith("photo of [trigger], ")
        editor = page.get_by_label(f"Caption of {image['original_name']}", exact=True)
        expect(editor).to_have_value(caption)
    expect(page.get_by_test_id("dataset-checklist")).to_contain_text("Every image has a caption")

    # One click fixes the identity finding: the words go, the caption stays readable, the finding disappears.
    identity.get_by_role("button", name="Fix").click()
    expect(page.get_by_label(f"Caption of {first['original_name']}", exact=True)).to_have_value("a woman in a red coat")
    expect(identity).to_have_count(0)
    expect(first_card.locator("[data-testid=caption-finding][data-kind=missing_trigger]")).to_be_visible()
    page.screenshot(path=str(screenshot_path("captions")), full_page=True)

    # Regenerate that one caption with the model: it replaces the hand-written one, trigger word first.
    first_card.get_by_role("button", name=f"Regenerate the AI caption for {first['original_name']}").click()
    editor = page.get_by_label(f"Caption of {first['original_name']}", exact=True)
    expect(editor).to_have_value(re.compile(r"^\[trigger\], "), timeout=CAPTION_TIMEOUT_MS)
    # The model's caption names the subject by the trigger word (its gibberish may still be long for CLIP).
    expect(first_card.locator("[data-testid=caption-finding][data-kind=missing_trigger]")).to_have_count(0)
    assert console.errors == []


def test_the_caption_language_is_the_one_the_captions_are_written_and_checked_in(
    page: Page, app: RunningApp, console: ConsoleWatch
) -> None:
    character = create_character(app.url, "Langue Person", "lngp")
    character_id = str(character["id"])
    upload_photos(app.url, character_id, 1, start=90)
    image = _images(app, character_id)[0]
    french = "photo de [trigger], une jeune femme aux yeux bleus dans un manteau rouge"
    httpx.patch(f"{app.url}/api/images/{image['id']}", json={"caption": french}, timeout=10).raise_for_status()

    page.goto(f"{app.url}/characters/{character_id}")
    panel = page.get_by_test_id("caption-with-ai")
    card = page.get_by_test_id("image-card").filter(has=page.locator(f"img[alt='{image['original_name']}']"))
    identity = card.locator("[data-testid=caption-finding][data-kind=identity]")
    language = panel.get_by_label("Language")
    expect(language).to_have_value("en")
    expect(identity).to_have_count(0)  # the English vocabulary knows no French words

    # In French the linter finds what the caption says about who she is.
    language.select_option(label="Français")
    expect(identity).to_contain_text("jeune, yeux bleus")

    # The choice stays with the character across a reload, and the AI is asked to write in it.
    page.reload()
    expect(page.get_by_test_id("caption-with-ai").get_by_label("Language")).to_have_value("fr")
    expect(identity).to_contain_text("jeune, yeux bleus")
    panel = page.get_by_test_id("caption-with-ai")
    panel.get_by_label("Caption", exact=True).select_option("all")
    panel.get_by_label("Replace existing captions").click()
    with page.expect_request(lambda r: r.url.endswith("/captions/auto") and r.method == "POST") as sent:
        panel.get_by_role("button", name="Caption with AI").click()
    assert sent.value.post_data_json["style"]["language"] == "fr"
    expect(page.get_by_test_id("caption-progress")).to_contain_text("succeeded", timeout=CAPTION_TIMEOUT_MS)

    # Another character keeps its own language.
    other = create_character(app.url, "Other Person", "othp")
    page.goto(f"{app.url}/characters/{other['id']}")
    expect(page.get_by_test_id("caption-with-ai").get_by_label("Language")).to_have_value("en")
    assert console.errors == []
