"""The whole path a person takes, in a real browser against the real app: create a character, upload photos,
caption them, train a LoRA while watching it live, reopen the finished run, generate with the LoRA; and cancel
a run from the Ongoing page.

Training runs on the tiny fast-test model in the app's real worker, so every number on screen is real.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import httpx
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import create_character, screenshot_path, upload_photos

STEPS = 200
EVERY = 50
# Training 200 steps on a busy 2-core machine takes about a minute; the model load and samples add to it.
RUN_TIMEOUT_MS = 300_000


def make_photos(folder: Path, count: int) -> list[Path]:
    """Distinct photos of 128 to 256 px, half PNG and half JPEG, each its own colours and shapes."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        rng = random.Random(1000 + index)
        width, height = rng.randrange(128, 257), rng.randrange(128, 257)
        image = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(10):
            x0, y0 = rng.randrange(width), rng.randrange(height)
            box = (x0, y0, x0 + rng.randrange(16, width // 2), y0 + rng.randrange(16, height // 2))
            colour = tuple(rng.randrange(256) for _ in range(3))
            (draw.rectangle if rng.random() < 0.5 else draw.ellipse)(box, fill=colour)
        if index % 2:
            path = folder / f"photo_{index}.jpg"
            image.save(path, format="JPEG", quality=92)
        else:
            path = folder / f"photo_{index}.png"
            image.save(path, format="PNG")
        paths.append(path)
    return paths


def loss_points(page: Page) -> int:
    return int(page.get_by_test_id("loss-chart").get_attribute("data-points") or 0)


def wait_while_running(page: Page, condition: str, timeout: int = RUN_TIMEOUT_MS) -> None:
    """Wait until a JS condition holds while the run page still says the run is running."""
    page.wait_for_function(
        f"""() => {{
            const status = document.querySelector('[data-testid=run-status]')?.textContent?.trim();
            if (status !== 'running') return false;
            return ({condition})();
        }}""",
        timeout=timeout,
    )


def test_create_upload_train_watch_and_generate(
    page: Page, app: RunningApp, console: ConsoleWatch, tmp_path: Path
) -> None:
    # 1. A new character, from the Characters page.
    page.goto(app.url + "/characters")
    page.get_by_role("button", name="+ New character").click()
    page.get_by_label("Name").fill("Flow Person")
    page.get_by_label("Trigger word").fill("flowp")
    page.get_by_role("button", name="Create character").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Flow Person")

    # 2. Eight photos at once, each with its own result; then one caption for all.
    photos = make_photos(tmp_path / "photos", 8)
    page.get_by_test_id("file-input").set_input_files([str(p) for p in photos])
    expect(page.get_by_test_id("upload-summary")).to_have_text("8 stored, 0 refused", timeout=60_000)
    expect(page.get_by_test_id("image-card")).to_have_count(8)
    page.locator("#bulk-action").select_option("set_missing")
    page.locator("#bulk-caption").fill("a photo of flowp")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("8 captions updated")).to_be_visible()

    # 3. Start training from the character's page, with small, frequent samples and checkpoints.
    page.get_by_role("link", name="Train a LoRA").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Start training")
    expect(page.locator("#train-plugin")).to_have_value("flux-lora")
    expect(page.locator("#cfg-steps")).not_to_have_value("")
    page.locator("#train-name").fill("Flow run")
    page.locator("#cfg-steps").fill(str(STEPS))
    page.locator("#cfg-resolutions").fill("128")
    page.locator("#cfg-sample_every").fill(str(EVERY))
    page.locator("#cfg-checkpoint_every").fill(str(EVERY))
    page.locator("#cfg-sample_prompts").fill("[trigger], a portrait photo")
    page.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(re.compile(r"/training/[0-9a-f]{32}$"), timeout=30_000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Flow run")
    job_id = page.url.rsplit("/", 1)[1]

    # 4. Live: the loss chart grows while the run is running, samples appear, the step counter moves.
    wait_while_running(page, "() => Number(document.querySelector('[data-testid=loss-chart]').dataset.points) > 0")
    first = loss_points(page)
    wait_while_running(
        page, f"() => Number(document.querySelector('[data-testid=loss-chart]').dataset.points) > {first + 5}"
    )
    assert loss_points(page) > first
    wait_while_running(page, "() => document.querySelectorAll('[data-testid=sample] img').length > 0")
    sample = page.get_by_test_id("sample").first.locator("img")
    expect(sample).to_be_visible()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=sample.element_handle())
    expect(page.get_by_test_id("step-counter")).not_to_contain_text("Step 0 of")
    page.screenshot(path=screenshot_path("flow_run_live"), full_page=True)

    # A reload in the middle keeps what was seen (from the persisted history) and keeps following.
    seen = loss_points(page)
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Flow run")
    page.wait_for_function(
        f"() => Number(document.querySelector('[data-testid=loss-chart]')?.dataset.points) >= {seen}"
    )

    # The log panel shows lines while the run trains, and gets the final validation loss at the end.
    page.get_by_role("tab", name="Logs").click()
    logs = page.get_by_test_id("logs-panel")
    expect(logs).to_contain_text("validation loss at step 0")
    before = page.evaluate(
        """() => ({
            status: document.querySelector('[data-testid=run-status]').textContent.trim(),
            lines: document.querySelectorAll('[data-testid=logs-panel] .log-line').length,
        })"""
    )
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    expect(logs).to_contain_text(f"validation loss at step {STEPS}")
    if before["status"] == "running":  # a very fast machine may have finished already: nothing left to stream
        assert logs.locator(".log-line").count() > before["lines"]
    expect(page.get_by_test_id("loss-chart")).to_have_attribute("data-points", str(STEPS))
    page.screenshot(path=screenshot_path("flow_run_finished"), full_page=True)

    # 5. After the run, from the persisted history alone: a fresh page shows everything it showed live.
    page.reload()
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded")
    expect(page.get_by_test_id("loss-chart")).to_have_attribute("data-points", str(STEPS))
    expect(page.get_by_test_id("samples-panel")).to_have_attribute("data-count", str(STEPS // EVERY))
    page.get_by_role("tab", name=re.compile("Checkpoints")).click()
    rows = page.get_by_test_id("checkpoint-row")
    expect(rows).to_have_count(4)  # three kept checkpoints and the final LoRA
    expect(rows.get_by_role("link", name="Generate with this")).to_have_count(4)
    final = rows.filter(has_text="final LoRA")
    expect(final).to_have_count(1)
    page.screenshot(path=screenshot_path("flow_run_checkpoints"), full_page=True)

    # The history lists it with its final loss.
    page.goto(app.url + "/training/history")
    row = page.get_by_test_id("history-table").locator("tr", has_text="Flow run")
    expect(row).to_contain_text("succeeded")
    row.get_by_role("link", name="Flow run").click()
    expect(page).to_have_url(re.compile(f"/training/{job_id}$"))
    page.get_by_role("tab", name=re.compile("Checkpoints")).click()

    # 6. Generate with the final LoRA; the image lands in the gallery with its LoRA.
    page.get_by_test_id("checkpoint-row").filter(has_text="final LoRA").get_by_role(
        "link", name="Generate with this"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Generate images")
    expect(page.get_by_test_id("lora-selected")).to_contain_text("Flow run")
    expect(page.locator("#gen-character")).to_have_value(re.compile(r"[0-9a-f]{32}"))
    page.locator("#gen-prompt").fill("flowp in a garden, soft light")
    expect(page.locator("#gen-size")).to_have_value("128x128")
    page.get_by_role("button", name=re.compile("^Generate")).click()
    progress = page.get_by_test_id("generation-progress")
    expect(progress).to_be_visible()
    expect(progress).to_contain_text("succeeded", timeout=120_000)
    card = page.get_by_test_id("generation-card").filter(has_text="flowp in a garden")
    expect(card).to_have_count(1, timeout=30_000)
    expect(card).to_contain_text("Flow run")
    image = card.locator("img")
    page.wait_for_function("(img) => img.complete && img.naturalWidth === 128", arg=image.element_handle())
    page.screenshot(path=screenshot_path("flow_generated"), full_page=True)
    assert console.errors == []


def test_cancelling_a_run_from_the_ongoing_page(page: Page, app: RunningApp, console: ConsoleWatch) -> None:
    character = create_character(app.url, "Cancel Person", "cnclp")
    upload_photos(app.url, str(character["id"]), 4, start=60)
    httpx.post(
        f"{app.url}/api/characters/{character['id']}/captions/bulk",
        json={"action": "set_missing", "caption": "a photo of [trigger]"},
        timeout=10,
    ).raise_for_status()
    response = httpx.post(
        f"{app.url}/api/training",
        json={
            "character_id": character["id"],
            "plugin": "flux-lora",
            "name": "Run to cancel",
            "config": {"steps": 20_000, "resolutions": [64], "sample_every": 0, "checkpoint_every": 0},
        },
        timeout=30,
    )
    response.raise_for_status()
    job_id = response.json()["id"]

    page.goto(app.url + "/training/ongoing")
    card = page.get_by_test_id("run-card").filter(has_text="Run to cancel")
    expect(card).to_be_visible()
    # Cancel once it really trains, so the worker has to stop a running loop.
    expect(card).to_contain_text("running", timeout=RUN_TIMEOUT_MS)
    expect(card.locator(".job-meta")).not_to_contain_text("Step 0/", timeout=120_000)
    card.get_by_role("button", name="Cancel").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Cancel run").click()
    expect(card).to_have_count(0, timeout=60_000)  # gone from the list once it has stopped
    expect(page.get_by_text("Nothing is training")).to_be_visible()

    # Its page, opened afresh, tells how it ended and keeps the steps it made.
    page.goto(f"{app.url}/training/{job_id}")
    expect(page.get_by_test_id("run-status")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    assert loss_points(page) > 0
    page.goto(app.url + "/training/history?status=cancelled")
    expect(page.get_by_test_id("history-table")).to_contain_text("Run to cancel")
    page.screenshot(path=screenshot_path("flow_cancelled"), full_page=True)
    assert console.errors == []
