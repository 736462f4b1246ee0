"""Forms say why before they fail: an engine that is not set up says why where it is chosen, a run that would be
refused cannot be started, the trigger word is previewed and a name without letters asks for one."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import caption_all, create_character, upload_photos


def test_an_engine_that_is_not_set_up_says_why_where_it_is_chosen(
    page: Page, app: RunningApp, console: ConsoleWatch
) -> None:
    page.goto(app.url + "/generate")
    engine = page.locator("#gen-engine")
    expect(engine).to_have_value("diffusers", timeout=60_000)
    expect(page.get_by_text(re.compile("Not set up"))).to_have_count(0)  # no banner until ComfyUI is picked
    engine.select_option("comfyui")
    reason = page.get_by_test_id("engine-unavailable")
    expect(reason).to_contain_text("Not set up: comfyui: ")
    assert len(str(reason.text_content())) > len("Not set up: comfyui: ") + 5
    page.locator("#gen-prompt").fill("a test")
    expect(page.get_by_role("button", name="Generate")).to_be_disabled()
    engine.select_option("diffusers")
    expect(reason).to_have_count(0)
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()

    page.goto(app.url + "/training/new")
    page.locator("#train-plugin").select_option("ai-toolkit")
    why = page.get_by_test_id("engine-reason")
    expect(why).to_contain_text("ai-toolkit cannot run here: ")
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()
    assert console.errors == []


def test_start_training_is_disabled_with_the_reason_when_the_run_would_be_refused(
    page: Page, app: RunningApp, console: ConsoleWatch
) -> None:
    console.ignore.append("status of 422")  # the estimate's refusal is the point
    character = create_character(app.url, "Uncaptioned Person", "uncp")
    upload_photos(app.url, str(character["id"]), 2, start=700)
    page.goto(f"{app.url}/training/new?character={character['id']}")
    blocked = page.get_by_test_id("start-blocked")
    expect(blocked).to_contain_text("This run would not start: ")
    expect(blocked).to_contain_text("caption")
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()
    assert console.errors == []


def test_the_trigger_word_is_previewed_and_a_name_without_letters_asks_for_one(
    page: Page, app: RunningApp, console: ConsoleWatch
) -> None:
    page.goto(app.url + "/characters")
    page.get_by_role("button", name="+ New character").click()
    page.get_by_label("Name").fill("Zoë Kim")
    preview = page.get_by_test_id("trigger-preview")
    expect(preview).to_have_text("Trigger word: zoe_kim")
    page.get_by_label("Trigger word").fill("  ohwx_zoe ")
    expect(preview).to_have_text("Trigger word: ohwx_zoe")
    page.get_by_label("Trigger word").fill("")
    page.get_by_label("Name").fill("2024")
    expect(preview).to_have_text("This name has no letters a-z to make a trigger word from: type one.")
    expect(page.get_by_role("button", name="Create character")).to_be_disabled()
    # A name in another script is transliterated, as the server does.
    page.get_by_label("Name").fill("李雷")
    expect(preview).to_have_text("Trigger word: lilei")
    page.get_by_role("button", name="Create character").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("李雷")
    assert console.errors == []


def test_resolutions_are_typed_with_commas_and_spaces(page: Page, app: RunningApp, console: ConsoleWatch) -> None:
    page.goto(app.url + "/training/new")
    field = page.locator("#cfg-resolutions")
    expect(field).to_be_visible(timeout=60_000)
    field.fill("")
    field.press_sequentially("96, 128")  # keystroke by keystroke, as a person types
    expect(field).to_have_value("96, 128")
    field.press("Tab")
    page.get_by_role("button", name="Reset to defaults").click()
    expect(field).not_to_have_value("96, 128")  # a change from outside the field still shows
    assert console.errors == []


def test_every_page_states_the_one_recommended_dataset_size(page: Page, app: RunningApp, console: ConsoleWatch) -> None:
    fewest, most = httpx.get(f"{app.url}/api/health", timeout=30).json()["recommended_images"]
    character = create_character(app.url, "Range Person", "rngp")
    page.goto(f"{app.url}/characters/{character['id']}")
    expect(page.get_by_test_id("recommended-photos")).to_contain_text(f"Upload {fewest}\u2013{most} photos")
    upload_photos(app.url, str(character["id"]), 2, start=720)
    page.reload()
    expect(page.get_by_test_id("dataset-checklist").first).to_contain_text(f"fewer than the {fewest}-{most}")
    assert console.errors == []


def test_a_cpu_only_installation_says_what_runs_where(page: Page, app: RunningApp, console: ConsoleWatch) -> None:
    character = create_character(app.url, "Cpu Person", "cpup")
    upload_photos(app.url, str(character["id"]), 2, start=760)
    caption_all(app.url, str(character["id"]), "[trigger] by a window")
    page.goto(f"{app.url}/training/new?character={character['id']}")
    line = page.get_by_test_id("memory-fit")
    expect(line).to_contain_text("CPU", timeout=60_000)
    expect(line).to_contain_text("GPU")
    assert console.errors == []
