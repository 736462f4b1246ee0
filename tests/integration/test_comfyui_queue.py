"""ComfyUI's queue as the ComfyUI plugin meets it: one prompt runs at a time, a cancelled or timed-out prompt that
still waits is removed from the queue (never rendered later), a running one is interrupted."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from isengard.plugins.api import JobCancelled, PluginError
from isengard.plugins.image.comfyui import ComfyUIGenerator
from isengard.plugins.image.comfyui_client import ComfyUIClient
from tests.support.comfyui_jobs import TINY_WORKFLOW, ComfySettings, data_with_a_lora, image_request
from tests.support.comfyui_server import FakeComfyUI, running_comfyui
from tests.support.recording_context import RecordingContext


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return data_with_a_lora(tmp_path)


def test_cancel_interrupts_the_running_prompt(data_dir: Path, tmp_path: Path) -> None:
    with running_comfyui(data_dir / "loras", tmp_path / "out", step_seconds=0.1) as comfy:
        ctx = RecordingContext(data_dir, data_dir / "models", cancel_after_generating=3)
        started = time.monotonic()
        with pytest.raises(JobCancelled):
            ComfyUIGenerator(None, ComfySettings(comfy.url)).run(ctx, image_request(steps=100))
        assert time.monotonic() - started < 8  # 100 steps would take 10 s
        prompt_id = comfy.prompts[0]["prompt_id"]
        assert comfy.interrupts == [prompt_id] and comfy.deleted == []
        deadline = time.monotonic() + 5
        while prompt_id not in comfy.history and time.monotonic() < deadline:
            time.sleep(0.05)
        assert comfy.history[prompt_id]["status"]["status_str"] == "error"
    assert ctx.artifacts == []


def _occupy(comfy: FakeComfyUI, steps: int) -> str:
    """Another client's long prompt, so that ours waits in ComfyUI's queue."""
    graph = json.loads(json.dumps(TINY_WORKFLOW))
    graph["7"]["inputs"]["steps"] = steps
    for node in graph.values():
        node.pop("_meta", None)
    other = ComfyUIClient(comfy.url)
    try:
        other.queue_prompt(graph, "blocker")
    finally:
        other.close()
    return "blocker"


def _cancel_once_queued(comfy: FakeComfyUI, ctx: RecordingContext) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(e[1] != "blocker" for e in comfy.pending):
            time.sleep(0.02)
        ctx.cancel_requested = True

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_cancelling_a_waiting_prompt_removes_it_from_the_queue(data_dir: Path, tmp_path: Path) -> None:
    with running_comfyui(data_dir / "loras", tmp_path / "out", step_seconds=0.05) as comfy:
        _occupy(comfy, steps=30)
        ctx = RecordingContext(data_dir, data_dir / "models")
        watcher = _cancel_once_queued(comfy, ctx)
        with pytest.raises(JobCancelled):
            ComfyUIGenerator(None, ComfySettings(comfy.url)).run(ctx, image_request(steps=5))
        watcher.join()
        ours = comfy.prompts[-1]["prompt_id"]
        assert comfy.deleted == [ours]
        deadline = time.monotonic() + 5  # the blocker ends; ours must never start after it
        while "blocker" not in comfy.history and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        assert comfy.executed == ["blocker"] and ours not in comfy.history
    assert ctx.artifacts == []


def test_a_prompt_that_times_out_while_waiting_is_removed_too(data_dir: Path, tmp_path: Path) -> None:
    with running_comfyui(data_dir / "loras", tmp_path / "out", step_seconds=0.1) as comfy:
        _occupy(comfy, steps=40)
        ctx = RecordingContext(data_dir, data_dir / "models")
        with pytest.raises(PluginError, match="did not finish the prompt in time"):
            ComfyUIGenerator(None, ComfySettings(comfy.url, timeout=1.0)).run(ctx, image_request(steps=5))
        ours = comfy.prompts[-1]["prompt_id"]
        assert comfy.deleted == [ours] and ours not in comfy.executed


def test_the_stand_in_queues_and_describes_itself_as_comfyui_does(data_dir: Path, tmp_path: Path) -> None:
    with running_comfyui(data_dir / "loras", tmp_path / "out", step_seconds=0.05) as comfy:
        _occupy(comfy, steps=100)
        client = ComfyUIClient(comfy.url)
        try:
            graph = {k: {kk: vv for kk, vv in v.items() if kk != "_meta"} for k, v in TINY_WORKFLOW.items()}
            client.queue_prompt(graph, "second")
            wait_for_running = time.monotonic() + 5
            while client.queue_state()[0] != {"blocker"} and time.monotonic() < wait_for_running:
                time.sleep(0.02)
            assert client.queue_state() == ({"blocker"}, {"second"})
            client.interrupt("second")  # not the running one: skipped
            time.sleep(0.2)
            assert client.queue_state() == ({"blocker"}, {"second"})
            client.delete_queued("second")
            assert client.queue_state() == ({"blocker"}, set())
            client.interrupt("blocker")
            deadline = time.monotonic() + 5
            while "blocker" not in comfy.history and time.monotonic() < deadline:
                time.sleep(0.02)
            assert comfy.history["blocker"]["status"]["status_str"] == "error" and comfy.executed == ["blocker"]
            sampler = client.object_info("KSampler")
            assert sampler is not None and "euler" in sampler["input"]["required"]["sampler_name"][0]
            assert client.object_info("NoSuchNode") is None
            assert client.models("loras") == ["char/run/final.safetensors"]
            assert client.models("diffusion_models") == ["flux1-dev.safetensors"]
        finally:
            client.close()
