"""Visual regression: screenshots of the main pages against committed baselines, with a tolerance.

Dynamic regions (times, the health panel) are masked. `ISENGARD_UPDATE_BASELINES=1` rewrites the baselines.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from e2e.conftest import RunningApp
from e2e.helpers import ARTIFACTS, create_character, upload_photos

BASELINES = Path(__file__).parent / "baselines"
UPDATE = os.environ.get("ISENGARD_UPDATE_BASELINES") == "1"
# A pixel counts as changed when a channel moves by more than this; a page fails past the changed share.
CHANNEL_TOLERANCE = 24
MAX_CHANGED_SHARE = 0.02


def changed_share(actual: Image.Image, expected: Image.Image) -> float:
    if actual.size != expected.size:
        return 1.0
    a = np.asarray(actual.convert("RGB"), dtype=np.int16)
    b = np.asarray(expected.convert("RGB"), dtype=np.int16)
    changed = (np.abs(a - b) > CHANNEL_TOLERANCE).any(axis=2)
    return float(changed.mean())


@pytest.fixture(scope="module")
def visual_character(app: RunningApp) -> dict[str, object]:
    character = create_character(app.url, "Visual Baseline", "vslb")
    upload_photos(app.url, str(character["id"]), 4, start=40)
    return character


def _shoot(page: Page, name: str) -> Image.Image:
    page.wait_for_load_state("networkidle")
    page.evaluate("document.fonts && document.fonts.ready")
    masks = [page.locator("[data-dynamic]"), page.get_by_test_id("health-panel"), page.locator(".nav-count")]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"visual_{name}.png"
    page.screenshot(path=path, mask=masks, mask_color="#ff00ff", animations="disabled")
    return Image.open(path)


@pytest.mark.parametrize(
    ("name", "path", "heading"),
    [
        ("video", "/video", "Video"),
        ("character", "/characters/{id}", "Visual Baseline"),
    ],
)
def test_page_matches_baseline(
    page: Page, app: RunningApp, visual_character: dict[str, object], name: str, path: str, heading: str
) -> None:
    page.goto(app.url + path.format(id=visual_character["id"]))
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator(".spinner")).to_have_count(0)
    actual = _shoot(page, name)
    baseline = BASELINES / f"{name}.png"
    if UPDATE or not baseline.exists():
        if not UPDATE:
            pytest.fail(f"no baseline for {name}: run with ISENGARD_UPDATE_BASELINES=1 and commit {baseline}")
        actual.save(baseline)
        return
    share = changed_share(actual, Image.open(baseline))
    assert share <= MAX_CHANGED_SHARE, f"{name} differs from its baseline in {share:.1%} of pixels"
