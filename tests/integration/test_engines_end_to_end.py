"""The production engines through the whole system: the API, the Redis queue and a worker process.

ai-toolkit (its `run.py` stand-in) trains: progress with each step's own loss arrives over SSE, samples and step
LoRAs become artifacts and LoRA rows with the steps they hold, and the LoRA it wrote renders in Isengard's diffusers
engine and through ComfyUI. ComfyUI (its server stand-in) renders images and a comparison grid the same way.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from isengard.config import Settings
from isengard.db.migrate import upgrade
from isengard.models.tiny import ensure_tiny_model
from tests.conftest import make_settings
from tests.integration.queue_support import live_api, start_worker_process, stop_process, wait_for
from tests.integration.test_sse_events import Event, read
from tests.support.ai_toolkit_run import step_loss
from tests.support.comfyui_server import FakeComfyUI, running_comfyui
from tests.support.training_setup import make_character

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

DOUBLE = Path(__file__).resolve().parents[1] / "support" / "ai_toolkit_run.py"
AI_TOOLKIT_CONFIG = {
    "steps": 12, "rank": 4, "learning_rate": 1e-3, "resolutions": [128], "batch_size": 1, "sample_every": 4,
    "sample_prompts": ["[trigger] portrait"], "sample_resolution": 64, "sample_steps": 2, "checkpoint_every": 3,
    "keep_checkpoints": 2, "quantize": False, "optimizer": "adamw",
}  # fmt: skip


@dataclass
class System:
    api: httpx.Client
    base: str
    settings: Settings
    comfy: FakeComfyUI


@pytest.fixture()
def system(tmp_path: Path, data_dir: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[System]:
    toolkit = tmp_path / "ai-toolkit"
    toolkit.mkdir()
    shutil.copyfile(DOUBLE, toolkit / "run.py")
    monkeypatch.setenv("AITK_DOUBLE_STEP_SECONDS", "0.15")  # slow enough that every step LoRA is seen before pruning
    (data_dir / "loras").mkdir(exist_ok=True)
    # ComfyUI sees Isengard's LoRA folder, as its extra_model_paths.yaml makes it.
    with running_comfyui(data_dir / "loras", tmp_path / "comfy-out", step_seconds=0.01) as comfy:
        # The engines read their own settings from the environment, as the API and the worker process do.
        monkeypatch.setenv("ISENGARD_AI_TOOLKIT_PATH", str(toolkit))
        monkeypatch.setenv("ISENGARD_AI_TOOLKIT_PYTHON", sys.executable)
        monkeypatch.setenv("ISENGARD_COMFYUI_URL", comfy.url)
        settings = make_settings(
            data_dir, redis_url=redis_url, lease_seconds=5.0, heartbeat_seconds=0.5, min_free_bytes=0
        )
        upgrade(settings.sqlalchemy_url)
        ensure_tiny_model(settings)
        worker: subprocess.Popen[bytes] | None = None
        with live_api(settings) as base, httpx.Client(base_url=base, timeout=30) as api:
            try:
                worker = start_worker_process(settings, "engines-worker", log_path=tmp_path / "worker.log")
                yield System(api, base, settings, comfy)
            finally:
                if worker is not None:
                    stop_process(worker)


def _events(system: System, job_id: str) -> list[Event]:
    """Every event of the job over SSE, until its final status closes the stream."""
    events = read(system.base, f"/api/jobs/{job_id}/events")
    assert events[-1][1] == "status" and events[-1][2]["status"] == "succeeded", events[-5:]
    return events


def _generate(system: System, **body: Any) -> dict[str, Any]:
    request = {"prompt": "a portrait", "width": 64, "height": 64, "steps": 2, "seed": 5, **body}
    response = system.api.post("/api/generation", json=request)
    assert response.status_code == 202, response.text
    events = _events(system, response.json()["id"])
    assert any(kind == "progress" and data["stage"] == "generating" for _, kind, data in events)
    job: dict[str, Any] = system.api.get(f"/api/jobs/{response.json()['id']}").json()
    return job


def _image(system: System, job: dict[str, Any]) -> Image.Image:
    (output,) = system.api.get(f"/api/jobs/{job['id']}/artifacts", params={"kind": "output"}).json()
    download = system.api.get(output["url"])
    assert download.status_code == 200
    with Image.open(io.BytesIO(download.content)) as image:
        return image.convert("RGB")


def test_ai_toolkit_trains_through_the_queue_and_its_lora_renders(system: System) -> None:
    character = make_character(system.api, "Toolkit Sitter", 2)  # type: ignore[arg-type]
    plugins = {p["name"]: p for p in system.api.get("/api/training/plugins").json()}
    assert plugins["ai-toolkit"]["capability"]["available"], plugins["ai-toolkit"]
    response = system.api.post(
        "/api/training", json={"character_id": character, "plugin": "ai-toolkit", "config": AI_TOOLKIT_CONFIG}
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    events = _events(system, job_id)

    progress = [data for _, kind, data in events if kind == "progress" and data.get("loss") is not None]
    assert [p["step"] for p in progress] == list(range(1, 13))
    assert all(p["loss"] == pytest.approx(step_loss(p["step"])) for p in progress)
    assert sorted({d["step"] for _, kind, d in events if kind == "sample"}) == [0, 5, 9, 12]
    assert [d["step"] for _, kind, d in events if kind == "checkpoint"] == [4, 7, 10]
    history = system.api.get(f"/api/jobs/{job_id}/history").json()
    assert {p["step"]: p["loss"] for p in history["loss"]} == {s: pytest.approx(step_loss(s)) for s in range(1, 13)}

    artifacts = system.api.get(f"/api/jobs/{job_id}/artifacts").json()
    assert sorted(a["step"] for a in artifacts if a["kind"] == "checkpoint") == [7, 10]  # ai-toolkit kept two
    loras = system.api.get("/api/loras", params={"character_id": character}).json()["items"]
    by_source = {(lora["source"], lora["step"]): lora for lora in loras}
    assert set(by_source) == {("trained", 12), ("checkpoint", 7), ("checkpoint", 10)}
    trained = by_source[("trained", 12)]
    assert trained["rank"] == 4 and trained["alpha"] == 4 and trained["trigger_word"] == "zxq"

    # The file ai-toolkit wrote renders in Isengard, and changes the image.
    selection = [{"lora_id": trained["id"], "weight": 1.0}]
    plain = _image(system, _generate(system, plugin="diffusers"))
    with_lora = _image(system, _generate(system, plugin="diffusers", loras=selection))
    assert plain.tobytes() != with_lora.tobytes()
    # And ComfyUI finds it through the LoRA folder it was pointed at.
    comfy_job = _generate(system, plugin="comfyui", loras=selection, character_id=character)
    sent = system.comfy.prompts[-1]["prompt"]["4"]["inputs"]
    assert sent["lora_name"] == f"{character}/{job_id}/ai-toolkit/toolkit_sitter/toolkit_sitter.safetensors"
    assert comfy_job["result"]["images"] == 1


def test_comfyui_renders_images_and_a_grid_through_the_queue(system: System) -> None:
    character = make_character(system.api, "Comfy Sitter", 0)  # type: ignore[arg-type]
    engines = {p["name"]: p for p in system.api.get("/api/generation/plugins").json()}
    assert engines["comfyui"]["capability"]["available"], engines["comfyui"]
    job = _generate(system, plugin="comfyui", character_id=character, num_images=2, steps=4)
    assert job["result"]["images"] == 2 and len(system.comfy.prompts) == 2
    gallery = system.api.get("/api/generations", params={"character_id": character}).json()["items"]
    assert sorted(g["seed"] for g in gallery) == [5, 6] and all(g["plugin"] == "comfyui" for g in gallery)

    grid = {"plugin": "comfyui", "character_id": character, "prompts": ["a knight"], "seeds": [1, 2],
            "columns": [{"label": "base", "loras": []}], "width": 64, "height": 64, "steps": 2}  # fmt: skip
    response = system.api.post("/api/generation/grid", json=grid)
    assert response.status_code == 202, response.text
    events = _events(system, response.json()["id"])
    assert [d["step"] for _, kind, d in events if kind == "progress"][-1] == 4
    assert len(system.comfy.prompts) == 4  # one prompt per cell
    done = system.api.get(f"/api/jobs/{response.json()['id']}").json()
    assert done["result"]["grid"] and done["result"]["cells"] == 2
    wait_for(lambda: len(system.comfy.history) == 4, 5, "ComfyUI finished every prompt")
