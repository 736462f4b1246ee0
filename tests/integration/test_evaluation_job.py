"""The evaluation job of an imported LoRA, through the API, the queue and a worker on the tiny model: the fixed
prompts x seeds are rendered and every image is scored; progress is reported per image."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from isengard.config import Settings
from isengard.models.locate import tiny_model_dir
from isengard.models.tiny import save_tiny_model
from isengard.worker.main import run_worker
from tests.support.image_jobs import make_test_lora
from tests.support.training_setup import make_character


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture()
def tiny(settings: Settings, tmp_path: Path) -> Path:
    save_tiny_model(tmp_path / "tiny")
    shutil.copytree(tmp_path / "tiny", tiny_model_dir(settings))
    return tiny_model_dir(settings)


def test_an_imported_lora_is_rendered_and_scored_through_the_queue(
    client: TestClient, settings: Settings, tiny: Path, tmp_path: Path
) -> None:
    character = make_character(client, "Imported Ivy", 3)
    lora_file = make_test_lora(tiny, tmp_path / "ivy.safetensors")
    imported = client.post(
        "/api/loras/import",
        params={"character_id": character, "base": "flux1-dev"},
        files={"files": ("ivy.safetensors", lora_file.read_bytes(), "application/octet-stream")},
    )
    assert imported.status_code == 201, imported.text
    lora = imported.json()
    body = {"prompts": ["portrait", "in a red coat"], "seeds": [1, 2], "width": 64, "height": 64, "steps": 2}
    response = client.post(f"/api/loras/{lora['id']}/evaluation", json=body)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "evaluation" and job["status"] == "queued"

    assert run_worker(settings, burst=True) == 0
    done = client.get(f"/api/jobs/{job['id']}").json()
    assert done["status"] == "succeeded", done
    assert done["result"]["images"] == 4 and isinstance(done["result"]["identity"], float)
    assert done["progress"]["step"] == 4 and done["progress"]["total"] == 4

    evaluation = client.get(f"/api/jobs/{job['id']}/evaluation").json()
    assert evaluation["status"] == "available" and evaluation["references"] == 3
    assert sorted((s["prompt"], s["index"]) for s in evaluation["samples"]) == [
        ("in a red coat", 2), ("in a red coat", 3), ("portrait", 0), ("portrait", 1)
    ]  # fmt: skip
    assert all(isinstance(s["identity"], float) and isinstance(s["adherence"], float) for s in evaluation["samples"])
    outputs = [a for a in client.get(f"/api/jobs/{job['id']}/artifacts").json() if a["kind"] == "output"]
    assert {a["id"] for a in outputs} == {s["artifact_id"] for s in evaluation["samples"]}


def test_bad_evaluation_requests_are_4xx(client: TestClient) -> None:
    assert client.post(f"/api/loras/{'0' * 32}/evaluation", json={}).status_code == 404
    assert client.post("/api/loras/nope/evaluation", json={}).status_code == 422  # not an id at all
    character = make_character(client, "Nobody", 0)
    assert character
    assert client.post(f"/api/loras/{'0' * 32}/evaluation", json={"seeds": []}).status_code == 422
