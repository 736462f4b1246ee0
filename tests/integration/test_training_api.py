"""Training through the API, the Redis queue and the worker, on the tiny model: a real LoRA at the end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors import safe_open

from isengard.config import Settings
from isengard.worker.main import run_worker
from tests.support.training_setup import SMALL, make_character


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only wait for each other on a busy machine
    yield
    torch.set_num_threads(previous)


def test_plugins_list_schema_defaults_and_capabilities(client: TestClient) -> None:
    plugins = {p["name"]: p for p in client.get("/api/training/plugins").json()}
    flux = plugins["flux-lora"]
    assert flux["capability"]["available"] is True
    assert flux["config_schema"]["properties"]["rank"]["description"]
    assert flux["defaults"]["steps"] <= 200  # fast-test defaults for the tiny model
    toolkit = plugins["ai-toolkit"]
    assert toolkit["capability"]["available"] is False and "AI_TOOLKIT_PATH" in toolkit["capability"]["reason"]


def test_bad_requests_get_messages_a_person_understands(client: TestClient) -> None:
    empty = make_character(client, "Empty", 0)
    uncaptioned = make_character(client, "Uncaptioned", 2, captions=False)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"character_id": "f" * 32}, "no character"),
        ({"character_id": empty}, "training needs at least 1"),
        ({"character_id": uncaptioned}, "2 of 2 images have no caption"),
        ({"character_id": uncaptioned, "config": {"rank": 0}}, "config.rank"),
        ({"character_id": uncaptioned, "config": {"resolutions": [100]}}, "multiples of 16"),
        ({"character_id": uncaptioned, "config": {"bogus": 1}}, "config.bogus"),
        ({"character_id": uncaptioned, "plugin": "nope"}, "no training plugin named 'nope'"),
        ({"character_id": uncaptioned, "plugin": "ai-toolkit"}, "cannot run here"),
    ]
    for body, message in cases:
        response = client.post("/api/training", json=body)
        assert response.status_code == 422, (body, response.text)
        assert message in response.json()["detail"], (body, response.json())
    allowed = client.post("/api/training/estimate", json={"character_id": uncaptioned,
                                                          "config": {"allow_empty_captions": True}})  # fmt: skip
    assert allowed.status_code == 200, allowed.text
    assert client.get("/api/jobs").json()["total"] == 0  # nothing was queued by refused requests


def test_estimate_and_presets(client: TestClient) -> None:
    character = make_character(client, "Preset Person", 3)
    estimate = client.post("/api/training/estimate", json={"character_id": character, "config": {"steps": 90}})
    assert estimate.status_code == 200, estimate.text
    body = estimate.json()
    assert body["steps"] == 90 and body["images"] == 3 and body["estimated_seconds"] > 0
    # A CPU-only installation says what runs where instead of showing no memory line at all.
    assert "CPU" in body["memory_summary"] and "GPU" in body["memory_summary"]
    assert body["config"]["rank"] == 8  # fast-test default filled in
    assert "no run measured yet" in body["basis"]  # the stated default, before any run of the plugin

    saved = client.post("/api/training/presets", json={"name": "quick rank 4", "config": {"rank": 4, "steps": 30}})
    assert saved.status_code == 201, saved.text
    preset = saved.json()
    assert client.post("/api/training/presets", json={"name": "quick rank 4", "config": {}}).status_code == 409
    bad = client.post("/api/training/presets", json={"name": "broken", "config": {"rank": -1}})
    assert bad.status_code == 422 and "config.rank" in bad.json()["detail"]
    assert [p["name"] for p in client.get("/api/training/presets").json()] == ["quick rank 4"]
    applied = client.post("/api/training/estimate", json={"character_id": character, "preset_id": preset["id"],
                                                          "config": {"steps": 50}})  # fmt: skip
    assert applied.json()["config"]["rank"] == 4 and applied.json()["steps"] == 50
    assert client.delete(f"/api/training/presets/{preset['id']}").status_code == 204
    assert client.get(f"/api/training/presets/{preset['id']}").status_code == 404


def test_a_run_through_the_queue_and_worker_produces_a_lora(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    character = make_character(client, "Queue Runner", 3)
    response = client.post("/api/training", json={"character_id": character, "config": SMALL, "name": "first"})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued" and job["kind"] == "training" and job["config"]["rank"] == 4
    assert job["run_number"] == 1

    assert run_worker(settings, burst=True) == 0

    done = client.get(f"/api/jobs/{job['id']}").json()
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert result["validation_loss_end"] < result["validation_loss_start"]
    artifacts = client.get(f"/api/jobs/{job['id']}/artifacts").json()
    kinds = [a["kind"] for a in artifacts]
    assert kinds.count("lora") == 1 and kinds.count("checkpoint") == 2 and kinds.count("sample") == 2
    assert sorted(a["step"] for a in artifacts if a["kind"] == "checkpoint") == [20, 30]

    loras = client.get("/api/loras", params={"character_id": character}).json()["items"]
    trained = [item for item in loras if item["source"] == "trained"]
    assert len(trained) == 1 and trained[0]["rank"] == 4 and trained[0]["trigger_word"] == "zxq"
    lora_artifact = next(a for a in artifacts if a["kind"] == "lora")
    download = client.get(f"/api/jobs/{job['id']}/artifacts/{lora_artifact['id']}/file")
    assert download.status_code == 200
    path = tmp_path / "downloaded.safetensors"
    path.write_bytes(download.content)
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata()["trigger_word"] == "zxq"
        assert any(key.endswith(".alpha") for key in handle.keys())  # noqa: SIM118

    history = client.get(f"/api/jobs/{job['id']}/history").json()
    assert len(history["loss"]) >= 40

    # The run recorded its speed; the next estimate at that resolution rests on it instead of the default.
    speed = result["speed"]
    assert speed["resolution"] == max(SMALL["resolutions"]) and speed["device"] == "cpu, tiny model"
    assert speed["seconds_per_step"] > 0
    estimate = client.post("/api/training/estimate", json={"character_id": character, "config": SMALL}).json()
    assert estimate["seconds_per_step"] == round(speed["seconds_per_step"], 4)
    assert "median speed of run at" in estimate["basis"] and "cpu, tiny model" in estimate["basis"]

    # Downloads carry names a person can tell apart: character, run number, step.
    steps = SMALL["steps"]
    assert f'filename="queue_runner-run1-step{steps}.safetensors"' in download.headers["content-disposition"]
    by_library = client.get(f"/api/loras/{trained[0]['id']}/file")
    assert f'filename="queue_runner-run1-step{steps}.safetensors"' in by_library.headers["content-disposition"]
    checkpoint = next(a for a in artifacts if a["kind"] == "checkpoint" and a["step"] == 20)
    named = client.get(f"/api/jobs/{job['id']}/artifacts/{checkpoint['id']}/file").headers["content-disposition"]
    assert 'filename="queue_runner-run1-step20.safetensors"' in named
    sample = next(a for a in artifacts if a["kind"] == "sample")
    named = client.get(f"/api/jobs/{job['id']}/artifacts/{sample['id']}/file").headers["content-disposition"]
    assert named.startswith("inline") and "queue_runner-run1-" in named


def test_runs_get_distinct_default_names_and_numbers(client: TestClient) -> None:
    character = make_character(client, "Ada Lovelace", 2)
    jobs = []
    for config in ({**SMALL, "steps": 50}, {**SMALL, "steps": 80, "rank": 8}):
        response = client.post("/api/training", json={"character_id": character, "config": config})
        assert response.status_code == 202, response.text
        jobs.append(response.json())
        client.post(f"/api/jobs/{jobs[-1]['id']}/cancel")
    assert [job["run_number"] for job in jobs] == [1, 2]
    assert jobs[0]["name"] == "Ada Lovelace run 1 (50 steps, rank 4)"
    assert jobs[1]["name"] == "Ada Lovelace run 2 (80 steps, rank 8)"
    assert all(ch.isascii() for job in jobs for ch in job["name"])


def test_cancel_a_running_job(client: TestClient, settings: Settings) -> None:
    character = make_character(client, "Cancel Me", 2)
    config = {**SMALL, "steps": 5000, "sample_every": 0, "checkpoint_every": 0}
    job_id = client.post("/api/training", json={"character_id": character, "config": config}).json()["id"]
    worker = threading.Thread(target=run_worker, args=(settings,), kwargs={"burst": True})
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (client.get(f"/api/jobs/{job_id}").json()["progress"].get("step") or 0) >= 3:
            break
        time.sleep(0.1)
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    worker.join(timeout=60)
    assert not worker.is_alive()
    final = client.get(f"/api/jobs/{job_id}").json()
    assert final["status"] == "cancelled"
    assert 3 <= final["progress"]["step"] < 5000


def test_a_cancelled_run_resumes_from_its_checkpoint_as_a_new_attempt_then_is_deleted(
    client: TestClient, settings: Settings
) -> None:
    character = make_character(client, "Resume Me", 2)
    config = {**SMALL, "steps": 400, "sample_every": 0, "checkpoint_every": 10, "keep_checkpoints": 1}
    job_id = client.post("/api/training", json={"character_id": character, "config": config}).json()["id"]
    assert client.post(f"/api/jobs/{job_id}/resume").status_code == 409  # queued: nothing to resume yet
    worker = threading.Thread(target=run_worker, args=(settings,), kwargs={"burst": True})
    worker.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (client.get(f"/api/jobs/{job_id}").json()["progress"].get("step") or 0) >= 15:
            break
        time.sleep(0.1)
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    worker.join(timeout=60)
    stopped = client.get(f"/api/jobs/{job_id}").json()
    assert stopped["status"] == "cancelled" and stopped["attempts"] == 1
    seen_steps = {point["step"] for point in client.get(f"/api/jobs/{job_id}/history").json()["loss"]}

    resumed = client.post(f"/api/jobs/{job_id}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "queued" and not resumed.json()["cancel_requested"]
    assert run_worker(settings, burst=True) == 0
    done = client.get(f"/api/jobs/{job_id}").json()
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2
    assert 10 <= done["result"]["resumed_from"] <= max(seen_steps)
    history = client.get(f"/api/jobs/{job_id}/history").json()
    assert {point["step"] for point in history["loss"]} == set(range(1, 401))  # one curve across both attempts
    messages = [status["message"] or "" for status in history["statuses"]]
    resumed_from = done["result"]["resumed_from"]
    # The allowance of attempts does not grow with a resume: "attempt 2 of 3", never "2 of 4".
    assert done["max_attempts"] == stopped["max_attempts"]
    assert f"resumed from step {resumed_from} (attempt 2 of {stopped['max_attempts']})" in messages[-2]
    # The smoothed curve carries on from the checkpoint's step instead of restarting at the first new loss.
    before = next(p for p in history["loss"] if p["step"] == resumed_from and p["attempt"] == 1)
    after = next(p for p in history["loss"] if p["step"] == resumed_from + 1 and p["attempt"] == 2)
    assert after["smoothed_loss"] == pytest.approx(0.9 * before["smoothed_loss"] + 0.1 * after["loss"])
    assert client.post(f"/api/jobs/{job_id}/resume").status_code == 409  # succeeded: nothing to resume

    # Deleting the run removes its rows, its LoRAs and its folder.
    folder = settings.data_path / "loras" / character / job_id
    assert folder.is_dir()
    assert client.delete(f"/api/jobs/{job_id}").status_code == 204
    assert client.get(f"/api/jobs/{job_id}").status_code == 404
    assert client.get("/api/loras", params={"job_id": job_id}).json()["items"] == []
    assert not folder.exists()


def test_a_run_without_checkpoint_does_not_resume_and_an_active_run_is_not_deleted(client: TestClient) -> None:
    character = make_character(client, "No Checkpoint", 2)
    job_id = client.post("/api/training", json={"character_id": character, "config": SMALL}).json()["id"]
    assert client.delete(f"/api/jobs/{job_id}").status_code == 409
    client.post(f"/api/jobs/{job_id}/cancel")
    refused = client.post(f"/api/jobs/{job_id}/resume")
    assert refused.status_code == 409 and "no checkpoint" in refused.json()["detail"]
    assert client.delete(f"/api/jobs/{job_id}").status_code == 204
