"""Generation follows what the user chose: the character's own LoRA, the form's size and steps for comparisons."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import create_character, trained_character, wait_for_job


@pytest.fixture(scope="module")
def ada(app: RunningApp) -> dict[str, object]:
    return trained_character(app.url, "Ada Gen", "adagen")


def default_lora(app: RunningApp, character_id: str) -> dict[str, object]:
    """The character's default LoRA as the API picks it (its run's recommended checkpoint when samples were scored)."""
    found = httpx.get(f"{app.url}/api/characters/{character_id}/default-lora", timeout=30).json()
    return dict(found["lora"])


def test_generate_with_it_attaches_the_characters_default_lora(
    page: Page, app: RunningApp, console: ConsoleWatch, ada: dict[str, object]
) -> None:
    lora = default_lora(app, str(ada["id"]))
    bare = create_character(app.url, "No Lora Yet", "nolry")
    page.goto(f"{app.url}/characters/{ada['id']}")
    page.get_by_role("link", name="Generate with it →").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Generate images")
    chip = page.get_by_test_id("lora-selected")
    expect(chip).to_have_count(1)
    expect(chip).to_contain_text(str(lora["name"]))

    page.locator("#gen-prompt").fill("[trigger] reading a book")
    with page.expect_request(lambda r: r.url.endswith("/api/generation") and r.method == "POST") as sent:
        page.get_by_role("button", name="Generate").first.click()
    body = json.loads(sent.value.post_data or "{}")
    assert [item["lora_id"] for item in body["loras"]] == [lora["id"]]
    expect(page.get_by_test_id("generation-progress")).to_contain_text("succeeded", timeout=120_000)
    card = page.get_by_test_id("generation-card").filter(has_text="adagen reading a book")
    expect(card).to_have_count(1, timeout=30_000)
    expect(card).to_contain_text(str(lora["name"]))

    # The chip can be removed, and a character without a trained LoRA says so instead of a silent base model.
    page.get_by_role("button", name="Remove LoRA").click()
    expect(chip).to_have_count(0)
    page.locator("#gen-character").select_option(str(bare["id"]))
    expect(page.get_by_test_id("character-lora-note")).to_contain_text("No Lora Yet has no trained LoRA yet")
    expect(chip).to_have_count(0)
    page.locator("#gen-character").select_option(str(ada["id"]))
    expect(chip).to_contain_text(str(lora["name"]))
    assert console.errors == []


def test_comparison_grid_uses_the_forms_size_and_steps(
    page: Page, app: RunningApp, console: ConsoleWatch, ada: dict[str, object]
) -> None:
    page.goto(f"{app.url}/generate")
    expect(page.locator("#gen-size")).to_have_value("128x128")
    page.locator("#gen-steps").fill("3")
    page.locator("#gen-prompt").fill("[trigger] at the sea")
    run = dict(ada["run"])  # type: ignore[call-overload]
    page.locator("#grid-run").select_option(str(run["id"]))
    page.locator("#grid-seeds").fill("5")
    with page.expect_request(lambda r: r.url.endswith("/api/generation/grid") and r.method == "POST") as sent:
        page.get_by_role("button", name="Compare checkpoints").click()
    body = json.loads(sent.value.post_data or "{}")
    assert (body["width"], body["height"], body["steps"]) == (128, 128, 3)
    card = page.get_by_test_id("generation-card").filter(has_text="at the sea")
    expect(card.first).to_contain_text("· 3 steps", timeout=120_000)
    assert console.errors == []


def test_images_open_large_navigate_by_keyboard_and_download_with_real_names(
    page: Page, app: RunningApp, console: ConsoleWatch, ada: dict[str, object]
) -> None:
    job = httpx.post(
        f"{app.url}/api/generation",
        json={"prompt": "[trigger] two views", "character_id": ada["id"], "width": 64, "height": 64, "steps": 1,
              "seed": 1257857271, "num_images": 2},
        timeout=30,
    ).json()  # fmt: skip
    wait_for_job(app.url, job["id"])
    page.goto(f"{app.url}/generate")
    cards = page.get_by_test_id("generation-card").filter(has_text="two views")
    expect(cards).to_have_count(2)
    with page.expect_download() as download:
        cards.filter(has_text="seed 1257857271").get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "ada_gen-1257857271.png"

    cards.first.get_by_role("button", name=re.compile("^Open")).click()
    viewer = page.get_by_role("dialog")
    expect(viewer).to_be_visible()
    large = viewer.get_by_test_id("lightbox-image")
    first_src = large.get_attribute("src")
    page.wait_for_function("(img) => img.complete && img.naturalWidth === 64", arg=large.element_handle())
    page.keyboard.press("ArrowRight")
    expect(large).not_to_have_attribute("src", first_src or "")
    page.keyboard.press("ArrowLeft")
    expect(large).to_have_attribute("src", first_src or "")
    page.keyboard.press("Escape")
    expect(viewer).to_have_count(0)
    assert console.errors == []
