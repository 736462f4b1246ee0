"""The whole path a person takes, in a real browser against the real app: create a character, upload photos with
loose captions, bulk-edit captions, train a LoRA while watching it live, see its worker killed and the run resume,
pick a step on the samples grid, generate with the character's LoRA, download with a real file name, find the LoRA
in the library; and follow a run on the Jobs page (cancelling a generation queued behind it there), cancel the run
from the Ongoing page, download its settings files from its page, resume it from its checkpoint and cancel it again.

Training runs on the tiny fast-test model in the app's real worker, so every number on screen is real.
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from pathlib import Path

import httpx
import yaml
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import create_character, queue_generation, screenshot_path, upload_photos

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


def test_create_upload_train_survive_a_lost_worker_pick_a_step_generate_download_and_find_the_lora(
    page: Page, takeover_app: RunningApp, console: ConsoleWatch, tmp_path: Path
) -> None:
    app = takeover_app
    # 1. A new character, from the Characters page; the trigger word is previewed.
    page.goto(app.url + "/characters")
    page.get_by_role("button", name="+ New character").click()
    page.get_by_label("Name").fill("Flow Person")
    page.get_by_label("Trigger word").fill("flowp")
    expect(page.get_by_test_id("trigger-preview")).to_have_text("Trigger word: flowp")
    page.get_by_role("button", name="Create character").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Flow Person")

    # 2. Eight photos at once, four with loose .txt captions beside them: each caption lands on its image.
    photos = make_photos(tmp_path / "photos", 8)
    captions = []
    for photo in photos[:4]:
        caption = photo.with_suffix(".txt")
        caption.write_text(f"[trigger] as {photo.stem}")
        captions.append(caption)
    page.get_by_test_id("file-input").set_input_files([str(p) for p in [*photos, *captions]])
    expect(page.get_by_test_id("upload-summary")).to_have_text("8 stored, 0 refused", timeout=60_000)
    expect(page.get_by_test_id("image-card")).to_have_count(8)
    expect(page.get_by_label(f"Caption of {photos[0].name}")).to_have_value(f"[trigger] as {photos[0].stem}")

    # 3. Bulk-edit: the other four get a caption, and the boxes show it at once.
    page.locator("#bulk-action").select_option("set_missing")
    page.locator("#bulk-caption").fill("a photo of [trigger]")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("4 captions updated")).to_be_visible()
    expect(page.get_by_label(f"Caption of {photos[7].name}")).to_have_value("a photo of [trigger]")

    # 4. Train from the character's page, with small, frequent samples and checkpoints.
    page.get_by_role("link", name="Train a LoRA").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Start training")
    expect(page.locator("#train-plugin")).to_have_value("flux-lora")
    expect(page.locator("#cfg-steps")).not_to_have_value("")
    page.locator("#train-name").fill("Flow run")
    page.locator("#cfg-steps").fill(str(STEPS))
    page.locator("#cfg-resolutions").fill("128")
    page.locator("#cfg-sample_every").fill(str(EVERY))
    page.locator("#cfg-checkpoint_every").fill(str(EVERY))
    page.locator("#cfg-sample_prompts").fill("[trigger], a portrait photo\n[trigger] in a garden")
    page.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(re.compile(r"/training/[0-9a-f]{32}$"), timeout=30_000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Flow run")
    expect(page.get_by_test_id("run-attempt")).to_have_text("attempt 1 of 3")

    # 5. Live: the loss chart grows while the run is running, samples appear, the step counter moves.
    wait_while_running(page, "() => Number(document.querySelector('[data-testid=loss-chart]').dataset.points) > 0")
    first = loss_points(page)
    wait_while_running(
        page, f"() => Number(document.querySelector('[data-testid=loss-chart]').dataset.points) > {first + 5}"
    )
    wait_while_running(page, "() => document.querySelectorAll('[data-testid=sample] img').length > 0")
    page.get_by_role("tab", name="Logs").click()
    expect(page.get_by_test_id("logs-panel")).to_contain_text("validation loss at step 0")
    page.get_by_role("tab", name=re.compile("Samples")).click()

    # 6. The worker is killed past the first checkpoint: the page says so, then shows the run resume.
    wait_while_running(
        page, f"() => Number(document.querySelector('[data-testid=step-counter] b').textContent) > {EVERY + 5}"
    )
    workers = httpx.get(f"{app.url}/api/health", timeout=10).json()["workers"]["workers"]
    os.kill(int(workers[0]["pid"]), signal.SIGKILL)
    expect(page.get_by_test_id("worker-state")).to_have_text("worker lost — waiting to resume", timeout=30_000)
    note = page.get_by_test_id("resume-note")
    expect(note).to_contain_text("(attempt 2 of 3)", timeout=120_000)
    expect(note).to_contain_text("resumed from step")
    expect(page.get_by_test_id("run-attempt")).to_have_text("attempt 2 of 3")
    page.screenshot(path=screenshot_path("flow_run_resumed"), full_page=True)

    # A reload in the middle keeps what was seen and keeps following.
    seen = loss_points(page)
    page.reload()
    page.wait_for_function(
        f"() => Number(document.querySelector('[data-testid=loss-chart]')?.dataset.points) >= {seen}"
    )
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("loss-chart")).to_have_attribute("data-points", str(STEPS))  # one curve, both attempts
    expect(page.get_by_test_id("loss-chart")).to_have_attribute("data-validation-points", "2")

    # 7. Pick the best step on the samples grid: two prompts by four steps, two steps side by side.
    page.reload()
    grid = page.get_by_test_id("samples-grid")
    expect(grid.get_by_test_id("samples-row")).to_have_count(2)
    expect(grid.get_by_role("columnheader")).to_contain_text(
        ["Prompt", *[f"step {s}" for s in range(EVERY, STEPS + 1, EVERY)]]
    )
    page.locator("#compare-a").select_option(str(EVERY))
    page.locator("#compare-b").select_option(str(STEPS - EVERY))
    expect(page.get_by_test_id("samples-compare").locator("img")).to_have_count(2)
    page.screenshot(path=screenshot_path("flow_samples_grid"), full_page=True)
    grid.get_by_role("link", name=f"Generate with step {STEPS - EVERY}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Generate images")
    expect(page.get_by_test_id("lora-selected")).to_contain_text(f"step {STEPS - EVERY}")

    # 8. Generate with the character's LoRA, from the character's page: its newest LoRA is attached.
    page.goto(app.url + "/characters")
    page.get_by_test_id("character-card").filter(has_text="Flow Person").click()
    page.get_by_role("link", name="Generate with it →").click()
    chip = page.get_by_test_id("lora-selected")
    expect(chip).to_have_count(1)
    expect(chip).to_contain_text("Flow run")
    page.locator("#gen-prompt").fill("[trigger] in a garden, soft light")
    expect(page.locator("#gen-size")).to_have_value("128x128")
    page.get_by_role("button", name=re.compile("^Generate")).click()
    expect(page.get_by_test_id("generation-progress")).to_contain_text("succeeded", timeout=120_000)
    card = page.get_by_test_id("generation-card").filter(has_text="flowp in a garden, soft light")
    expect(card).to_have_count(1, timeout=30_000)
    expect(card).to_contain_text("Flow run")
    image = card.locator("img")
    page.wait_for_function("(img) => img.complete && img.naturalWidth === 128", arg=image.element_handle())

    # 9. Download with a real file name.
    seed = re.search(r"seed (\d+)", str(card.text_content()))
    assert seed is not None
    with page.expect_download() as download:
        card.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == f"flow_person-{seed.group(1)}.png"
    page.screenshot(path=screenshot_path("flow_generated"), full_page=True)

    # 10. The LoRA is in the library, with where it came from, and downloads under the run's name.
    page.get_by_role("link", name="LoRAs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("LoRA library")
    page.locator("#lora-character").select_option(label="Flow Person")
    row = page.get_by_test_id("lora-row").filter(has_text="Flow run")
    expect(row).to_contain_text("trained here")
    expect(row).to_contain_text(f"{STEPS} steps")
    with page.expect_download() as download:
        row.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == f"flow_person-run1-step{STEPS}.safetensors"
    page.screenshot(path=screenshot_path("flow_library"), full_page=True)
    assert console.errors == []


def test_a_run_on_the_jobs_page_cancelled_from_the_ongoing_page_resumed_and_cancelled_again(
    page: Page, app: RunningApp, console: ConsoleWatch, tmp_path: Path
) -> None:
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
            "config": {
                "steps": 20_000,
                "resolutions": [64],
                "sample_every": 0,
                "checkpoint_every": 10,
                "keep_checkpoints": 1,
            },
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
    past_checkpoint = time.monotonic() + 120
    while (httpx.get(f"{app.url}/api/jobs/{job_id}", timeout=10).json()["progress"].get("step") or 0) < 12:
        assert time.monotonic() < past_checkpoint, "no checkpoint to resume from"
        time.sleep(0.2)

    # The Jobs page lists the run with its progress; a generation queued behind it is cancelled from there.
    page.get_by_role("navigation").get_by_role("link", name="Jobs").click()
    run_row = page.locator(f"[data-testid=job-row][data-job-id='{job_id}']")
    expect(run_row).to_have_attribute("data-status", "running")
    expect(run_row.get_by_test_id("job-progress")).to_contain_text("/20000")
    generation = queue_generation(app.url, "a lighthouse behind the run")
    gen_row = page.locator(f"[data-testid=job-row][data-job-id='{generation['id']}']")
    expect(gen_row).to_have_attribute("data-status", "queued")  # listed live, no reload
    expect(gen_row.get_by_test_id("job-queue")).to_contain_text("in the generation queue")
    gen_row.get_by_role("button", name="Cancel").click()
    expect(gen_row).to_have_attribute("data-status", "cancelled")
    assert httpx.get(f"{app.url}/api/jobs/{generation['id']}", timeout=10).json()["status"] == "cancelled"
    expect(run_row).to_have_attribute("data-status", "running")  # the run is not touched
    page.screenshot(path=screenshot_path("flow_jobs"), full_page=True)

    page.goto(app.url + "/training/ongoing")
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

    # Resume it from its checkpoint: a second attempt of the same run, counting on from the checkpoint's step.
    page.goto(f"{app.url}/training/{job_id}")
    # Its settings download from its page, as a file the form imports and as an ai-toolkit job file.
    with page.expect_download() as download:
        page.get_by_role("link", name="Settings", exact=True).click()
    assert download.value.suggested_filename.endswith("-settings.yaml")
    download.value.save_as(tmp_path / "settings.yaml")
    assert yaml.safe_load((tmp_path / "settings.yaml").read_text())["config"]["steps"] == 20_000
    with page.expect_download() as download:
        page.get_by_role("link", name="ai-toolkit", exact=True).click()
    download.value.save_as(tmp_path / "ai-toolkit.yaml")
    toolkit = yaml.safe_load((tmp_path / "ai-toolkit.yaml").read_text())
    assert toolkit["config"]["process"][0]["train"]["steps"] == 20_000
    resume = page.get_by_role("button", name=re.compile(r"^Resume from step \d+$"))
    checkpoint = int(str(resume.text_content()).rsplit(" ", 1)[1])
    resume.click()
    note = page.get_by_test_id("resume-note")
    expect(note).to_contain_text(f"resumed from step {checkpoint}", timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("run-status")).to_have_text("running")
    expect(page.get_by_test_id("run-attempt")).to_contain_text("attempt 2 of")
    page.wait_for_function(
        f"() => Number(document.querySelector('[data-testid=step-counter] b')?.textContent) > {checkpoint}",
        timeout=120_000,
    )
    # And stopped again from its page: no Resume button while it runs, the run ends cancelled once more.
    expect(page.get_by_role("button", name=re.compile("^Resume from step"))).to_have_count(0)
    page.get_by_role("button", name="Cancel run").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Cancel run").click()
    expect(page.get_by_test_id("run-status")).to_have_text("cancelled", timeout=60_000)
    assert httpx.get(f"{app.url}/api/jobs/{job_id}", timeout=10).json()["attempts"] == 2
    assert console.errors == []
