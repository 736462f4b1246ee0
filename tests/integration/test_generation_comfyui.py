"""The ComfyUI plugin against a protocol-faithful local ComfyUI stand-in: success with LoRAs, node errors,
execution errors, interrupt on cancel, and a server that is down."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from isengard.domain import LoraRef
from isengard.plugins.api import JobCancelled, PluginError
from isengard.plugins.image.comfyui import ComfyUIGenerator
from isengard.plugins.image.outputs import read_png_params
from isengard.redis_server import free_port
from tests.support.comfyui_server import FakeComfyUI, running_comfyui
from tests.support.recording_context import RecordingContext


class _Settings:
    def __init__(self, url: str, workflows: Path | None = None, timeout: float = 30.0) -> None:
        self.comfyui_url = url
        self.comfyui_workflows_dir = workflows
        self.comfyui_timeout_seconds = timeout


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / "loras" / "char" / "run").mkdir(parents=True)
    (folder / "loras" / "char" / "run" / "final.safetensors").write_bytes(b"weights")
    return folder


@pytest.fixture()
def comfy(data_dir: Path, tmp_path: Path) -> Any:
    # ComfyUI sees Isengard's LoRA folder, as extra_model_paths.yaml would make it.
    with running_comfyui(data_dir / "loras", tmp_path / "comfy-output") as server:
        yield server


def _request(**values: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": "a knight", "width": 96, "height": 64, "steps": 5, "seed": 11}
    body.update(values)
    return body


LORA = LoraRef(lora_id="l1", path="loras/char/run/final.safetensors", weight=0.6, name="final").model_dump()


def test_generates_with_a_lora_and_records_everything(comfy: FakeComfyUI, data_dir: Path) -> None:
    plugin = ComfyUIGenerator(_Settings(comfy.url))
    assert plugin.capabilities().available
    assert plugin.capabilities().details["version"] == "0.3.64"
    ctx = RecordingContext(data_dir, data_dir / "models")
    summary = plugin.run(ctx, _request(num_images=2, loras=[LORA], trigger_word="sirx"))
    assert summary["images"] == 2 and summary["seeds"] == [11, 12]
    # What ComfyUI received: our ids, our values, the LoRA by its name relative to loras/.
    sent = comfy.prompts[0]
    assert sent["client_id"] and sent["prompt_id"]
    graph = sent["prompt"]
    assert graph["5"]["inputs"]["text"] == "sirx, a knight"
    assert graph["4"]["inputs"]["lora_name"] == "char/run/final.safetensors"
    assert graph["4"]["inputs"]["strength_model"] == 0.6
    assert graph["9"]["inputs"]["seed"] == 11 and comfy.prompts[1]["prompt"]["9"]["inputs"]["seed"] == 12
    # Progress followed the sampler's steps across both images.
    generating = [p for p in ctx.progress if p.stage == "generating"]
    assert (generating[-1].step, generating[-1].total) == (10, 10) and len(generating) == 10
    first, second = ctx.artifacts
    with Image.open(data_dir / first.path) as image:
        assert image.size == (96, 64)
        a = image.convert("RGB").getpixel((80, 60))
    with Image.open(data_dir / second.path) as image:
        b = image.convert("RGB").getpixel((80, 60))
    assert a != b  # different seeds, different images
    params = read_png_params(data_dir / first.path)
    assert params["plugin"] == "comfyui" and params["workflow"] == "flux-dev-lora" and params["seed"] == 11
    assert params["loras"][0]["weight"] == 0.6
    assert (data_dir / first.meta["thumbnail_path"]).is_file()


def test_a_missing_lora_is_a_clear_node_error(comfy: FakeComfyUI, data_dir: Path) -> None:
    missing = LoraRef(lora_id="l2", path="loras/char/other.safetensors", name="other").model_dump()
    ctx = RecordingContext(data_dir, data_dir / "models")
    with pytest.raises(PluginError) as caught:
        ComfyUIGenerator(_Settings(comfy.url)).run(ctx, _request(loras=[missing]))
    message = str(caught.value)
    assert "node 4 (LoraLoaderModelOnly)" in message and "'lora_name'" in message and "Value not in list" in message
    assert ctx.artifacts == []


def test_an_execution_error_names_the_node(data_dir: Path, tmp_path: Path) -> None:
    with running_comfyui(data_dir / "loras", tmp_path / "out", fail_node_type="VAEDecode") as comfy:
        ctx = RecordingContext(data_dir, data_dir / "models")
        with pytest.raises(PluginError, match=r"node 10 \(VAEDecode\).*out of memory"):
            ComfyUIGenerator(_Settings(comfy.url)).run(ctx, _request())
    assert ctx.artifacts == []


def test_cancel_interrupts_the_prompt_on_the_server(data_dir: Path, tmp_path: Path) -> None:
    with running_comfyui(data_dir / "loras", tmp_path / "out", step_seconds=0.1) as comfy:
        ctx = RecordingContext(data_dir, data_dir / "models", cancel_after_generating=3)
        started = time.monotonic()
        with pytest.raises(JobCancelled):
            ComfyUIGenerator(_Settings(comfy.url)).run(ctx, _request(steps=100))
        assert time.monotonic() - started < 8  # 100 steps would take 10 s
        assert comfy.interrupts == [comfy.prompts[0]["prompt_id"]]
        prompt_id = comfy.prompts[0]["prompt_id"]
        deadline = time.monotonic() + 5
        while prompt_id not in comfy.history and time.monotonic() < deadline:
            time.sleep(0.05)
        assert comfy.history[prompt_id]["status"]["status_str"] == "error"
    assert ctx.artifacts == []


def test_a_server_that_is_down_fails_fast_with_a_clear_message(data_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    plugin = ComfyUIGenerator(_Settings(url))
    capability = plugin.capabilities()
    assert not capability.available and "not reachable" in (capability.reason or "")
    ctx = RecordingContext(data_dir, data_dir / "models")
    started = time.monotonic()
    with pytest.raises(PluginError, match=f"ComfyUI at {url} is not reachable"):
        plugin.run(ctx, _request())
    assert time.monotonic() - started < 10


def test_a_server_that_stops_answering_times_out(data_dir: Path, tmp_path: Path) -> None:
    with running_comfyui(data_dir / "loras", tmp_path / "out", step_seconds=1.0) as comfy:
        ctx = RecordingContext(data_dir, data_dir / "models")
        with pytest.raises(PluginError, match="did not finish the prompt in time"):
            ComfyUIGenerator(_Settings(comfy.url, timeout=1.5)).run(ctx, _request(steps=50))
        assert comfy.interrupts  # the abandoned prompt is interrupted, not left running


def test_user_workflow_from_the_configured_folder(comfy: FakeComfyUI, data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "tiny.json").write_text(
        '{"1": {"class_type": "CLIPTextEncode", "_meta": {"title": "isengard:prompt"}, "inputs": {"text": ""}},'
        ' "2": {"class_type": "EmptySD3LatentImage", "_meta": {"title": "isengard:width,height"},'
        '       "inputs": {"width": 8, "height": 8, "batch_size": 1}},'
        ' "3": {"class_type": "KSampler", "_meta": {"title": "isengard:seed,steps"},'
        '       "inputs": {"seed": 0, "steps": 1, "positive": ["1", 0], "latent_image": ["2", 0]}},'
        ' "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "x"}}}'
    )
    ctx = RecordingContext(data_dir, data_dir / "models")
    summary = ComfyUIGenerator(_Settings(comfy.url, folder)).run(ctx, _request(workflow="tiny"))
    assert summary["workflow"] == "tiny" and summary["images"] == 1
    assert comfy.prompts[0]["prompt"]["3"]["inputs"]["steps"] == 5
