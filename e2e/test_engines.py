"""Generate through ComfyUI from the browser: with a ComfyUI server configured (the protocol stand-in of the tests),
the Generate page offers it as an engine, and the image it renders lands in the gallery."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from tests.support.comfyui_server import FakeComfyUI, running_comfyui

from e2e.conftest import ConsoleWatch, RunningApp, _ensure_web_bundle, start_app, stop_app
from e2e.helpers import screenshot_path


@pytest.fixture(scope="module")
def comfy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeComfyUI, Path]]:
    workdir = tmp_path_factory.mktemp("isengard-comfy")
    loras = workdir / "data" / "loras"
    loras.mkdir(parents=True)
    with running_comfyui(loras, workdir / "comfy-out", step_seconds=0.02) as server:
        yield server, workdir


@pytest.fixture(scope="module")
def comfy_app(comfy: tuple[FakeComfyUI, Path]) -> Iterator[RunningApp]:
    server, workdir = comfy
    _ensure_web_bundle()
    running = start_app(workdir, ISENGARD_COMFYUI_URL=server.url)
    yield running
    stop_app(running)


def test_generate_with_comfyui_as_the_engine(
    page: Page, comfy: tuple[FakeComfyUI, Path], comfy_app: RunningApp, console: ConsoleWatch
) -> None:
    server, _ = comfy
    page.goto(f"{comfy_app.url}/generate")
    expect(page.get_by_role("heading", level=1)).to_have_text("Generate images")
    engine = page.locator("#gen-engine")
    expect(engine).to_have_value("diffusers", timeout=60_000)  # the first engine check imports diffusers
    expect(engine.locator("option[value=comfyui]")).to_be_enabled()
    engine.select_option("comfyui")
    page.locator("#gen-prompt").fill("a lighthouse at dusk, drawn by comfy")
    page.get_by_role("button", name=re.compile("^Generate")).click()
    progress = page.get_by_test_id("generation-progress")
    expect(progress).to_contain_text("succeeded", timeout=60_000)
    card = page.get_by_test_id("generation-card").filter(has_text="a lighthouse at dusk")
    expect(card).to_have_count(1, timeout=30_000)
    image = card.locator("img")
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())

    # ComfyUI rendered it: one prompt with the page's text, recorded as a ComfyUI image.
    assert len(server.prompts) == 1
    assert server.prompts[0]["prompt"]["5"]["inputs"]["text"] == "a lighthouse at dusk, drawn by comfy"
    gallery = httpx.get(f"{comfy_app.url}/api/generations", timeout=10).json()["items"]
    assert [g["plugin"] for g in gallery] == ["comfyui"]
    page.screenshot(path=screenshot_path("comfyui_generated"), full_page=True)
    assert console.errors == []
