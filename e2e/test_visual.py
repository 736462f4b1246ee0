"""Visual regression: screenshots of the main pages against committed baselines, with a tolerance.

The pages are shot against an app of their own, seeded with the same data every time (one captioned character,
one short finished run), so nothing another test created shows up. Dynamic regions (times, durations, measured
speed, the random seed, the health panel) are masked. `ISENGARD_UPDATE_BASELINES=1` rewrites the baselines.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from e2e.conftest import RunningApp, start_app, stop_app
from e2e.helpers import ARTIFACTS, create_character, upload_photos

BASELINES = Path(__file__).parent / "baselines"
UPDATE = os.environ.get("ISENGARD_UPDATE_BASELINES") == "1"
# A pixel counts as changed when a channel moves by more than this (anti-aliasing noise); a page fails past the
# changed share. The pages render the same pixels run to run (what varies is masked), so the share is small enough
# that one changed word fails: a word of body text covers about 0.03% of a 1280x860 page.
CHANNEL_TOLERANCE = 24
MAX_CHANGED_SHARE = 0.0001
RUN_TIMEOUT_S = 240


def changed_share(actual: Image.Image, expected: Image.Image) -> float:
    if actual.size != expected.size:
        return 1.0
    a = np.asarray(actual.convert("RGB"), dtype=np.int16)
    b = np.asarray(expected.convert("RGB"), dtype=np.int16)
    changed = (np.abs(a - b) > CHANNEL_TOLERANCE).any(axis=2)
    return float(changed.mean())


def _finish_short_run(base_url: str, character_id: str) -> None:
    response = httpx.post(
        f"{base_url}/api/training",
        json={
            "character_id": character_id,
            "plugin": "flux-lora",
            "name": "Visual run",
            "config": {"steps": 5, "resolutions": [64], "sample_prompts": [], "checkpoint_every": 0},
        },
        timeout=30,
    )
    response.raise_for_status()
    job_id = response.json()["id"]
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        status = httpx.get(f"{base_url}/api/jobs/{job_id}", timeout=10).json()["status"]
        if status == "succeeded":
            return
        assert status in ("queued", "running"), f"the seeding run ended {status}"
        time.sleep(0.5)  # polling the API for the seed data, not waiting on the page
    raise AssertionError(f"the seeding run did not finish in {RUN_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def visual_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningApp, dict[str, object]]]:
    running = start_app(tmp_path_factory.mktemp("isengard-visual"))
    try:
        character = create_character(running.url, "Visual Baseline", "vslb")
        upload_photos(running.url, str(character["id"]), 4, start=40)
        httpx.post(
            f"{running.url}/api/characters/{character['id']}/captions/bulk",
            json={"action": "set_missing", "caption": "a photo of [trigger]"},
            timeout=10,
        ).raise_for_status()
        _finish_short_run(running.url, str(character["id"]))
        yield running, character
    finally:
        stop_app(running)


def _shoot(page: Page, name: str) -> Image.Image:
    page.wait_for_load_state("networkidle")
    page.evaluate("document.fonts && document.fonts.ready")
    masks = [page.locator("[data-dynamic]"), page.get_by_test_id("health-panel"), page.locator(".nav-count")]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"visual_{name}.png"
    page.screenshot(path=path, mask=masks, mask_color="#ff00ff", animations="disabled")
    return Image.open(path)


@pytest.mark.parametrize(
    ("name", "path", "heading", "ready"),
    [
        ("characters", "/characters", "Characters", "character-card"),
        ("character", "/characters/{id}", "Visual Baseline", "image-card"),
        ("dataset", "/dataset", "Dataset", "image-card"),
        ("start_training", "/training/new", "Start training", "dataset-checklist"),
        ("history", "/training/history", "Training history", "history-table"),
        ("generate", "/generate", "Generate images", None),
        ("video", "/video", "Video", None),
    ],
)
def test_page_matches_baseline(
    page: Page,
    visual_app: tuple[RunningApp, dict[str, object]],
    name: str,
    path: str,
    heading: str,
    ready: str | None,
) -> None:
    app, character = visual_app
    page.goto(app.url + path.format(id=character["id"]))
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    if ready:
        expect(page.get_by_test_id(ready).first).to_be_visible()
    expect(page.locator(".spinner")).to_have_count(0)
    for image in page.locator("main img").all():
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    actual = _shoot(page, name)
    baseline = BASELINES / f"{name}.png"
    if UPDATE or not baseline.exists():
        if not UPDATE:
            pytest.fail(f"no baseline for {name}: run with ISENGARD_UPDATE_BASELINES=1 and commit {baseline}")
        actual.save(baseline)
        return
    share = changed_share(actual, Image.open(baseline))
    assert share <= MAX_CHANGED_SHARE, f"{name} differs from its baseline in {share:.1%} of pixels"


def test_a_changed_word_fails_the_comparison(page: Page, visual_app: tuple[RunningApp, dict[str, object]]) -> None:
    """The tolerance is tight enough to see text change: one word of a table cell, against the same page."""
    app, _ = visual_app
    page.goto(app.url + "/training/history")
    expect(page.get_by_test_id("history-table")).to_be_visible()
    before = _shoot(page, "history_before_edit")
    page.get_by_test_id("history-table").locator("td", has_text="succeeded").first.evaluate(
        "(cell) => { cell.querySelector('.badge').textContent = 'failed' }"
    )
    after = _shoot(page, "history_after_edit")
    assert changed_share(before, before) == 0.0
    assert changed_share(after, before) > MAX_CHANGED_SHARE
