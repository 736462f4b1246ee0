"""The LoRA library page: every LoRA with where it came from, import by dropping a file (asked its base when the file
cannot tell), rename, download with a real file name, refused deletion while a job needs it, "use in Generate",
filter by character."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from tests.support.image_jobs import make_test_lora

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import create_character, start_run, trained_character, wait_for_job


@pytest.fixture(scope="module")
def lib(app: RunningApp) -> dict[str, object]:
    return trained_character(app.url, "Lib Person", "libp", seed=500)


def test_library_lists_imports_renames_downloads_and_guards_deletion(
    page: Page, app: RunningApp, console: ConsoleWatch, lib: dict[str, object], tmp_path: Path
) -> None:
    console.ignore.append("status of 409")  # the refused deletion below
    console.ignore.append("status of 422")  # the import that asks for its base
    other = create_character(app.url, "Lib Other", "libo")
    page.goto(app.url + "/loras")
    expect(page.get_by_role("heading", level=1)).to_have_text("LoRA library")
    page.locator("#lora-character").select_option(str(lib["id"]))
    rows = page.get_by_test_id("lora-row")
    expect(rows).to_have_count(1)
    row = rows.first
    for text in ("Lib Person", "trained here", "rank ", "6 steps", "flux1-dev"):  # the LoRA names its base
        expect(row).to_contain_text(text)
    expect(row.get_by_test_id("lora-size")).to_have_text(re.compile(r"\d+(\.\d+)? (KB|MB)"))

    # Download carries a real file name.
    with page.expect_download() as download:
        row.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "lib_person-run1-step6.safetensors"

    # Rename in place.
    row.get_by_role("button", name="Rename").click()
    page.get_by_label("New name").fill("Lib final")
    page.get_by_label("New name").press("Enter")
    expect(row).to_contain_text("Lib final")

    # Import by dropping a .safetensors (here: choosing it), for the other character. The file has FLUX.1's shapes
    # and no header: dev or Krea, the page asks which and sends it again with the answer.
    made = make_test_lora(app.data_dir / "models" / "tiny-flux", tmp_path / "outside_lora.safetensors", seed=3)
    page.locator("#lora-import-character").select_option(str(other["id"]))
    page.get_by_test_id("lora-import-input").set_input_files(str(made))
    question = page.get_by_test_id("lora-import-question")
    expect(question).to_contain_text("flux1-krea-dev", timeout=60_000)
    base = question.get_by_label("Base of outside_lora.safetensors")
    expect(base.locator("option")).to_have_count(2)
    base.select_option("flux1-krea-dev")
    question.get_by_role("button", name="Import as this base").click()
    expect(page.get_by_test_id("lora-import-result")).to_contain_text("Imported", timeout=60_000)
    expect(question).to_have_count(0)
    page.locator("#lora-character").select_option(str(other["id"]))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("imported")
    expect(rows.first).to_contain_text("outside_lora")
    expect(rows.first).to_contain_text("flux1-krea-dev")

    # Deleting is refused while a queued job needs the LoRA, with the reason.
    lora_id = httpx.get(f"{app.url}/api/loras", params={"character_id": lib["id"]}, timeout=30).json()["items"][0]["id"]
    blocker = start_run(app.url, str(lib["id"]), "Busy run", steps=20_000)
    job = httpx.post(
        f"{app.url}/api/generation",
        json={"prompt": "x", "width": 64, "height": 64, "steps": 1, "loras": [{"lora_id": lora_id, "weight": 1}]},
        timeout=30,
    ).json()
    page.locator("#lora-character").select_option(str(lib["id"]))
    row = rows.filter(has_text="Lib final")
    row.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("alertdialog")
    dialog.get_by_role("button", name="Delete").click()
    expect(dialog).to_contain_text(f"used by generation job '{job['name']}'")
    page.keyboard.press("Escape")
    expect(rows.filter(has_text="Lib final")).to_have_count(1)
    for job_id in (job["id"], blocker["id"]):
        httpx.post(f"{app.url}/api/jobs/{job_id}/cancel", timeout=30).raise_for_status()
        wait_for_job(app.url, job_id)

    # "Use in Generate" opens the form with the LoRA attached.
    row.get_by_role("link", name="Use in Generate").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Generate images")
    expect(page.get_by_test_id("lora-selected")).to_contain_text("Lib final")
    assert console.errors == []
