"""Each memory profile a CPU can run, trained through the API, the Redis queue and a worker on a quantizable tiny
FLUX."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from fastapi.testclient import TestClient

from isengard.config import Settings
from isengard.models.locate import tiny_model_dir
from isengard.models.tiny import QUANTIZABLE_SHAPE, save_tiny_model
from isengard.worker.main import run_worker
from tests.support.training_setup import SMALL, make_character


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only wait for each other on a busy machine
    yield
    torch.set_num_threads(previous)


def test_every_profile_trains_through_the_queue_with_checkpoints_and_samples(
    client: TestClient, settings: Settings
) -> None:
    # The worker's fast-test model, built wide enough for torchao's NF4 blocks before the worker looks for it.
    save_tiny_model(tiny_model_dir(settings), shape=QUANTIZABLE_SHAPE)
    character = make_character(client, "Profiled", 3)
    config = {**SMALL, "steps": 20, "sample_every": 10}
    jobs = {}
    for name in ("auto", "int8", "nf4", "nf4-offload"):
        body = {"character_id": character, "config": {**config, "memory_profile": name}, "name": name}
        response = client.post("/api/training", json=body)
        assert response.status_code == 202, response.text
        assert response.json()["config"]["memory_profile"] == name
        jobs[name] = response.json()["id"]

    assert run_worker(settings, burst=True) == 0

    for requested, job_id in jobs.items():
        done = client.get(f"/api/jobs/{job_id}").json()
        assert done["status"] == "succeeded", done
        result = done["result"]
        chosen = "bf16" if requested == "auto" else requested  # a CPU's auto is the unquantized base
        assert result["memory_profile"] == chosen
        assert result["validation_loss_end"] < result["validation_loss_start"], (requested, result)
        history = client.get(f"/api/jobs/{job_id}/history").json()
        assert any(f"memory profile {chosen}" in line["message"] for line in history["logs"]), history["logs"]
        kinds = [a["kind"] for a in client.get(f"/api/jobs/{job_id}/artifacts").json()]
        assert kinds.count("lora") == 1 and kinds.count("checkpoint") == 1 and kinds.count("sample") == 2, kinds
