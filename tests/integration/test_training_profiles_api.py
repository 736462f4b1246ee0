"""Each memory profile a CPU can run, trained through the API, the Redis queue and a worker on a quantizable tiny
model of each family (FLUX.1, FLUX.2 klein)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from diffusers import Flux2KleinPipeline
from fastapi.testclient import TestClient

from isengard.config import Settings
from isengard.models import loading
from isengard.models.bases import get_base
from isengard.models.locate import tiny_model_dir
from isengard.models.memory_plan import plan_training
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


def test_klein_trains_under_every_profile_the_planner_offers_it(client: TestClient, settings: Settings) -> None:
    base = get_base("flux2-klein-4b")
    plan = plan_training(transformer_config=dict(base.transformer_config), resolution=1024, batch_size=1, rank=16,
                         gradient_checkpointing=True, gpu_bytes=None, base=base.name)  # fmt: skip
    offered = [estimate.profile for estimate in plan.estimates]
    assert "nf4-offload" in offered  # the smallest profile is klein's too
    model = save_tiny_model(tiny_model_dir(settings, base.name), shape=base.family.tiny_quantizable_shape,
                            base=base.name)  # fmt: skip
    # Every block's linear layer NF4-quantizable: an NF4 run really trains on 4-bit weights.
    assert loading.unquantizable_linears(loading.transformer_config(model), "nf4") == ["context_embedder"]
    character = make_character(client, "Klein Profiled", 3)
    config = {**SMALL, "base": base.name, "steps": 20, "learning_rate": 1e-2, "sample_every": 20}
    jobs = {}
    for name in offered:
        body = {"character_id": character, "config": {**config, "memory_profile": name}, "name": name}
        response = client.post("/api/training", json=body)
        assert response.status_code == 202, response.text
        jobs[name] = response.json()["id"]

    assert run_worker(settings, burst=True) == 0

    pipe = Flux2KleinPipeline.from_pretrained(model)  # the unquantized base, as diffusers users load it
    pipe.set_progress_bar_config(disable=True)

    def image() -> torch.Tensor:
        out = pipe(prompt="rdfig standing", height=64, width=64, num_inference_steps=2, max_sequence_length=32,
                   generator=torch.Generator().manual_seed(3), output_type="pt").images  # fmt: skip
        return torch.as_tensor(out)

    plain = image()
    for name, job_id in jobs.items():
        done = client.get(f"/api/jobs/{job_id}").json()
        assert done["status"] == "succeeded", done
        result = done["result"]
        assert result["memory_profile"] == name
        assert result["validation_loss_end"] < result["validation_loss_start"], (name, result)
        history = client.get(f"/api/jobs/{job_id}/history").json()
        assert any(f"memory profile {name}" in line["message"] for line in history["logs"]), history["logs"]
        pipe.load_lora_weights(str(settings.data_path / result["lora_path"]), adapter_name=name.replace("-", "_"))
        assert (image() - plain).abs().mean() > 1e-3, name
        pipe.delete_adapters(name.replace("-", "_"))
