"""A second base from the form: the training form offers the registry's bases with their licence and applies the
chosen base's recommended settings to the fields not edited, a run on FLUX.2 [klein] 4B trains its tiny model, the
library filters by base, and generating with the LoRA runs on that base."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import caption_all, create_character, upload_photos
from isengard.models.bases import get_base

STEPS = 8


def test_train_on_a_second_base_from_the_form_and_generate_with_it(
    page: Page, app: RunningApp, console: ConsoleWatch
) -> None:
    character = create_character(app.url, "Klein Person", "kleinp")
    upload_photos(app.url, str(character["id"]), 3, start=900)
    caption_all(app.url, str(character["id"]))

    page.goto(f"{app.url}/training/new?character={character['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Start training")
    base = page.locator("#train-base")
    expect(base).to_have_value("flux1-dev", timeout=30_000)  # capabilities ask torch about the GPU: seconds at first
    expect(page.get_by_test_id("base-details")).to_contain_text("Non-Commercial")
    base.select_option("flux2-klein-4b")
    expect(page.get_by_test_id("base-details")).to_contain_text("Apache-2.0 (commercial use allowed)")
    # The new base's recommended settings replace those not edited, and the form says which; an edited one stays.
    klein, krea = (get_base(name).defaults.guidance for name in ("flux2-klein-4b", "flux1-krea-dev"))
    dev = get_base("flux1-dev").defaults.guidance
    applied = page.get_by_test_id("base-applied")
    expect(applied).to_contain_text(f"sample guidance {dev:g} → {klein:g}")
    page.get_by_text(re.compile(r"^Advanced \(")).click()
    guidance = page.locator("#cfg-sample_guidance")
    expect(guidance).to_have_value(f"{klein:g}")
    guidance.fill("5")
    base.select_option("flux1-krea-dev")
    expect(applied).to_contain_text("Kept your sample guidance")
    expect(applied).not_to_contain_text(f"→ {krea:g}")
    expect(guidance).to_have_value("5")
    base.select_option("flux2-klein-4b")
    page.locator("#train-name").fill("Klein run")
    page.locator("#cfg-steps").fill(str(STEPS))
    page.locator("#cfg-resolutions").fill("64")
    page.locator("#cfg-sample_every").fill("0")
    page.locator("#cfg-checkpoint_every").fill("0")
    page.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(re.compile(r"/training/[0-9a-f]{32}$"), timeout=30_000)
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=300_000)

    page.goto(f"{app.url}/loras?base=flux2-klein-4b")
    expect(page.locator("#lora-base")).to_have_value("flux2-klein-4b")
    row = page.get_by_test_id("lora-row").filter(has_text="Klein run")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("flux2-klein-4b")
    page.locator("#lora-base").select_option("flux1-krea-dev")
    expect(page.get_by_test_id("lora-row").filter(has_text="Klein run")).to_have_count(0)

    page.goto(f"{app.url}/characters/{character['id']}")
    page.get_by_role("link", name="Generate with it →").click()
    expect(page.get_by_test_id("lora-selected")).to_contain_text("Klein run")
    page.locator("#gen-prompt").fill("[trigger] by the sea")
    page.get_by_role("button", name=re.compile("^Generate")).click()
    expect(page.get_by_test_id("generation-progress")).to_contain_text("succeeded", timeout=120_000)
    card = page.get_by_test_id("generation-card").filter(has_text="kleinp by the sea")
    expect(card).to_have_count(1, timeout=30_000)
    assert console.errors == []
