"""Quality measured, shown in the browser: a finished run's identity / adherence chart beside the loss with the
recommended checkpoint marked first in the checkpoints list and each sample's scores; and the dataset check's
identity finding (a photo of someone else among one person's photos) with its one-click removal."""

from __future__ import annotations

import io

import httpx
from PIL import Image
from playwright.sync_api import Page, expect
from tests.portraits import astronaut, augmentations, grace_hopper

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import create_character, trained_character


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_run_page_charts_scores_and_marks_the_recommended_checkpoint(
    page: Page, app: RunningApp, console: ConsoleWatch
) -> None:
    trained = trained_character(
        app.url, "Scored Person", "scrp", seed=700, steps=6, sample_every=2, checkpoint_every=2, keep_checkpoints=5,
        sample_prompts=["[trigger] smiling", "[trigger] in a red hat"], sample_steps=2, sample_resolution=64,
    )  # fmt: skip
    run = dict(trained["run"])  # type: ignore[call-overload]
    evaluation = httpx.get(f"{app.url}/api/jobs/{run['id']}/evaluation", timeout=10).json()
    assert evaluation["status"] == "available", evaluation
    page.goto(f"{app.url}/training/{run['id']}")
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded")
    chart = page.get_by_test_id("score-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("[data-series=identity] circle")).to_have_count(len(evaluation["checkpoints"]))
    expect(chart.get_by_test_id("score-chart-recommended")).to_have_count(1)
    expect(page.get_by_test_id("recommended-step")).to_contain_text(f"step {evaluation['recommended_step']}")
    expect(page.get_by_test_id("sample-scores").first).to_contain_text("adh")

    page.get_by_role("tab", name="Checkpoints").click()
    first = page.get_by_test_id("checkpoint-row").first
    expect(first).to_have_attribute("data-recommended", "true")
    expect(first.get_by_test_id("recommended-checkpoint")).to_be_visible()
    expect(page.get_by_test_id("recommended-checkpoint")).to_have_count(1)

    # The library marks the recommended checkpoint as the character's default, and Generate attaches it.
    recommended = str(evaluation["recommended_lora_id"])
    character = str(trained["id"])
    page.goto(f"{app.url}/loras?character={character}")
    default_row = page.locator("[data-testid=lora-row][data-default]")
    expect(default_row).to_have_count(1)
    expect(default_row).to_have_attribute("data-lora-id", recommended)
    expect(default_row).to_have_attribute("data-default", "recommended")
    expect(default_row.get_by_test_id("default-lora")).to_contain_text("recommended")
    page.goto(f"{app.url}/generate?character={character}")
    expect(page.get_by_test_id("lora-selected")).to_have_count(1)
    expect(page.get_by_test_id("lora-selected")).to_contain_text(f"step {evaluation['recommended_step']}")

    # The person makes another LoRA of the character the default: the choice sticks, and Generate follows it.
    page.goto(f"{app.url}/loras?character={character}&source=checkpoint")
    other = page.locator("[data-testid=lora-row]:not([data-default])").first
    other_id = str(other.get_attribute("data-lora-id"))
    other.get_by_role("button", name="Make default").click()
    chosen = page.locator(f"[data-testid=lora-row][data-lora-id='{other_id}']")
    expect(chosen).to_have_attribute("data-default", "chosen")
    page.reload()
    expect(chosen).to_have_attribute("data-default", "chosen")
    expect(page.locator("[data-testid=lora-row][data-default]")).to_have_count(1)
    chosen_step = httpx.get(f"{app.url}/api/loras/{other_id}", timeout=10).json()["step"]
    page.goto(f"{app.url}/generate?character={character}")
    expect(page.get_by_test_id("lora-selected")).to_have_count(1)
    expect(page.get_by_test_id("lora-selected")).to_contain_text(f"step {chosen_step}")
    assert console.errors == []


def test_dataset_check_flags_the_photo_of_someone_else(page: Page, app: RunningApp, console: ConsoleWatch) -> None:
    character = create_character(app.url, "Eileen Check", "elnc")
    photos = {name: _jpeg(image) for name, image in augmentations(astronaut()).items()}
    photos["stranger"] = _jpeg(grace_hopper())
    files = [("files", (f"{name}.jpg", data, "image/jpeg")) for name, data in photos.items()]
    httpx.post(f"{app.url}/api/characters/{character['id']}/images", files=files, timeout=60).raise_for_status()
    page.goto(f"{app.url}/characters/{character['id']}")
    check = page.get_by_test_id("identity-check")
    stranger = check.locator("[data-testid=identity-finding][data-kind=someone_else]")
    expect(stranger).to_have_count(1, timeout=30_000)
    expect(stranger).to_contain_text("stranger.jpg")
    expect(stranger).to_contain_text("distance")
    stranger.get_by_role("button", name="Remove").click()
    expect(check.locator("[data-kind=someone_else]")).to_have_count(0, timeout=30_000)
    assert console.errors == []
