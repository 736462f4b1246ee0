"""Settings as files in the browser: a run's settings downloaded from the history, imported into the Start training
form (which fills with them), and a broken file refused with a readable message."""

from __future__ import annotations

from pathlib import Path

import yaml
from playwright.sync_api import Page, expect

from e2e.conftest import ConsoleWatch, RunningApp
from e2e.helpers import caption_all, create_character, start_run, upload_photos, wait_for_job


def test_a_settings_file_fills_the_form(page: Page, app: RunningApp, console: ConsoleWatch, tmp_path: Path) -> None:
    character = create_character(app.url, "Settings File Person", "stfp")
    upload_photos(app.url, str(character["id"]), 2, start=970)
    caption_all(app.url, str(character["id"]))
    run = start_run(app.url, str(character["id"]), "Run with files", steps=7, rank=3)
    wait_for_job(app.url, str(run["id"]))

    page.goto(app.url + "/training/history")
    row = page.get_by_test_id("history-table").locator("tr", has_text="Run with files")
    with page.expect_download() as download:
        row.get_by_role("link", name="Settings").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.endswith("-settings.yaml")
    assert yaml.safe_load(saved.read_text())["config"]["steps"] == 7
    with page.expect_download() as toolkit:
        row.get_by_role("link", name="ai-toolkit").click()
    toolkit_file = tmp_path / toolkit.value.suggested_filename
    toolkit.value.save_as(toolkit_file)
    assert yaml.safe_load(toolkit_file.read_text())["config"]["process"][0]["train"]["steps"] == 7

    page.goto(app.url + "/training/new")
    expect(page.locator("#cfg-steps")).not_to_have_value("7")
    page.get_by_label("Settings file").set_input_files(str(saved))
    expect(page.get_by_text("Settings of Run with files imported")).to_be_visible()
    expect(page.locator("#cfg-steps")).to_have_value("7")
    expect(page.locator("#cfg-rank")).to_have_value("3")

    # A broken file: the form stays as it was and the message says where the file is wrong.
    page.get_by_label("Settings file").set_input_files(
        files=[{"name": "broken.yaml", "mimeType": "application/yaml", "buffer": b"config:\n  rank: [8\n"}]
    )
    expect(page.get_by_text("The file was not imported")).to_be_visible()
    expect(page.get_by_text("not valid YAML (line")).to_be_visible()
    expect(page.locator("#cfg-steps")).to_have_value("7")
    assert not [e for e in console.errors if "422" not in e], console.errors
