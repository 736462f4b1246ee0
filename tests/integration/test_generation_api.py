"""Generation end to end: the API queues jobs, a real worker renders them with the tiny model, the gallery serves
them; validation answers clear 422s; comparison grids over a run's LoRAs."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from isengard.config import Settings
from isengard.db.models import Job, Lora
from isengard.models.locate import tiny_model_dir
from isengard.models.tiny import save_tiny_model
from isengard.worker.main import run_worker
from tests.support.image_jobs import make_test_lora


@pytest.fixture(scope="module")
def built_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-flux")


@pytest.fixture()
def api(settings: Settings, built_tiny_model: Path) -> Iterator[TestClient]:
    shutil.copytree(built_tiny_model, tiny_model_dir(settings))
    from isengard.api.app import create_app

    with TestClient(create_app(settings)) as client:
        yield client


def _character(api: TestClient, name: str = "Ada", trigger: str = "adaxq") -> str:
    response = api.post("/api/characters", json={"name": name, "trigger_word": trigger})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _lora(
    settings: Settings,
    character_id: str | None,
    *,
    seed: int,
    job_id: str | None = None,
    step: int | None = None,
    source: str = "trained",
) -> str:
    folder = settings.data_path / "loras" / (character_id or "imported") / (job_id or "manual")
    path = make_test_lora(tiny_model_dir(settings), folder / f"lora-{seed}.safetensors", seed=seed)
    with Session(create_engine(settings.sqlalchemy_url)) as db:
        row = Lora(
            character_id=character_id, job_id=job_id, name=f"lora {seed}", source=source, step=step,
            path=path.relative_to(settings.data_path).as_posix(), rank=4, alpha=4, trigger_word=None,
            bytes=path.stat().st_size,
        )  # fmt: skip
        db.add(row)
        db.commit()
        return row.id


def _job(settings: Settings, character_id: str) -> str:
    with Session(create_engine(settings.sqlalchemy_url)) as db:
        job = Job(kind="training", status="succeeded", plugin="flux-lora", character_id=character_id, name="run 1")
        db.add(job)
        db.commit()
        return job.id


def _run_queue(api: TestClient, settings: Settings, job_id: str) -> dict[str, object]:
    assert run_worker(settings, burst=True, worker_id="test-worker") == 0
    job = api.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job
    return dict(job)


def _pixels(api: TestClient, generation_id: str) -> np.ndarray:
    response = api.get(f"/api/generations/{generation_id}/file")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_generate_through_queue_and_worker_into_the_gallery(api: TestClient, settings: Settings) -> None:
    character = _character(api)
    lora = _lora(settings, character, seed=1)
    body = {"prompt": "portrait in a garden", "width": 64, "height": 64, "steps": 2, "seed": 42, "num_images": 2,
            "loras": [{"lora_id": lora, "weight": 0.8}]}  # fmt: skip
    response = api.post("/api/generation", json=body)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "generation" and job["status"] == "queued" and job["character_id"] == character
    _run_queue(api, settings, job["id"])

    page = api.get("/api/generations", params={"character_id": character}).json()
    assert len(page["items"]) == 2
    first = min(page["items"], key=lambda item: item["seed"])
    assert first["seed"] == 42 and first["prompt"] == "adaxq, portrait in a garden"
    assert first["loras"][0]["lora_id"] == lora and first["loras"][0]["weight"] == 0.8
    assert first["loras"][0]["name"] == "lora 1", "the gallery names the LoRAs an image was made with"
    assert first["params"]["base_model"] and first["plugin"] == "diffusers"
    # Files live under outputs/{character_id}/{job_id}/ with the parameters embedded.
    served = api.get(first["url"])
    assert served.headers["content-disposition"] == 'inline; filename="ada-42.png"'
    with Image.open(io.BytesIO(served.content)) as image:
        assert image.text["seed"] == "42" and "adaxq" in image.text["prompt"]
        assert '"weight": 0.8' in image.text["loras"]
    assert (settings.data_path / "outputs" / character / job["id"]).is_dir()
    thumb = api.get(first["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.content[8:12] == b"WEBP"
    # Filters: by LoRA, and a LoRA never used finds nothing.
    assert len(api.get("/api/generations", params={"lora_id": lora}).json()["items"]) == 2
    other = _lora(settings, character, seed=2)
    assert api.get("/api/generations", params={"lora_id": other}).json()["items"] == []
    # Cursor pagination, newest first, no overlap.
    one = api.get("/api/generations", params={"limit": 1}).json()
    two = api.get("/api/generations", params={"limit": 1, "cursor": one["next_cursor"]}).json()
    assert one["items"][0]["id"] != two["items"][0]["id"] and two["next_cursor"] is None

    # Generate again: the same settings and seed give the same pixels; without the LoRA they differ.
    again = api.post(f"/api/generations/{first['id']}/again")
    assert again.status_code == 202, again.text
    _run_queue(api, settings, again.json()["id"])
    redo = api.get("/api/generations", params={"job_id": again.json()["id"]}).json()["items"][0]
    assert np.array_equal(_pixels(api, first["id"]), _pixels(api, redo["id"]))
    reusable = api.get(f"/api/generations/{first['id']}/request").json()
    assert reusable["seed"] == 42 and reusable["prompt"] == "portrait in a garden"
    reusable["loras"] = []
    plain = api.post("/api/generation", json=reusable).json()
    _run_queue(api, settings, plain["id"])
    no_lora = api.get("/api/generations", params={"job_id": plain["id"]}).json()["items"][0]
    assert not np.array_equal(_pixels(api, first["id"]), _pixels(api, no_lora["id"]))

    # Delete removes the row and both files.
    png = settings.data_path / first["params"]["thumbnail_path"]
    assert png.is_file()
    assert api.delete(f"/api/generations/{first['id']}").status_code == 204
    assert api.get(f"/api/generations/{first['id']}").status_code == 404
    assert not png.exists()


def test_requests_are_validated_with_clear_messages(api: TestClient, settings: Settings) -> None:
    character = _character(api)
    ok = {"prompt": "x", "width": 64, "height": 64, "steps": 1}
    cases = [
        ({**ok, "plugin": "nope"}, "no image plugin named 'nope'"),
        ({**ok, "loras": [{"lora_id": "0" * 32}]}, "no LoRA with id"),
        ({**ok, "character_id": "f" * 32}, "no character"),
        ({**ok, "width": 4096}, "width"),
        ({**ok, "num_images": 50}, "num_images"),
        ({**ok, "prompt": ""}, "prompt"),
        ({**ok, "plugin": "comfyui"}, "comfyui"),
    ]
    for body, expected in cases:
        response = api.post("/api/generation", json=body)
        assert response.status_code == 422, (body, response.text)
        assert expected in response.text, response.text
    lora = _lora(settings, character, seed=3)
    with Session(create_engine(settings.sqlalchemy_url)) as db:
        row = db.get(Lora, lora)
        assert row is not None
        (settings.data_path / row.path).unlink()
    response = api.post("/api/generation", json={**ok, "loras": [{"lora_id": lora}]})
    assert response.status_code == 422 and "missing" in response.json()["detail"]


def test_plugins_are_listed_with_their_request_schema(api: TestClient) -> None:
    plugins = {p["name"]: p for p in api.get("/api/generation/plugins").json()}
    assert plugins["diffusers"]["capability"]["available"] is True
    assert "prompt" in plugins["diffusers"]["request_schema"]["properties"]
    assert plugins["comfyui"]["capability"]["available"] is False
    assert "ISENGARD_COMFYUI_URL" in plugins["comfyui"]["capability"]["reason"]


def test_comparison_grid_over_a_runs_checkpoints(api: TestClient, settings: Settings) -> None:
    character = _character(api)
    run = _job(settings, character)
    _lora(settings, character, seed=10, job_id=run, step=100, source="checkpoint")
    _lora(settings, character, seed=11, job_id=run, step=200, source="checkpoint")
    _lora(settings, character, seed=12, job_id=run)
    body = {"prompts": ["a portrait", "on a beach"], "seeds": [1], "job_id": run, "include_base": True,
            "width": 64, "height": 64, "steps": 2}  # fmt: skip
    response = api.post("/api/generation/grid", json=body)
    assert response.status_code == 202, response.text
    _run_queue(api, settings, response.json()["id"])
    (grid,) = api.get("/api/generations", params={"job_id": response.json()["id"]}).json()["items"]
    assert grid["kind"] == "grid"
    assert [c["label"] for c in grid["params"]["columns"]] == ["base", "step 100", "step 200", "lora 12"]
    with Image.open(io.BytesIO(api.get(grid["url"]).content)) as image:
        assert image.width > 4 * 64 and image.height > 2 * 64
    assert api.post(f"/api/generations/{grid['id']}/again").status_code == 409
    too_big = {**body, "prompts": ["p"] * 8, "seeds": list(range(8))}
    response = api.post("/api/generation/grid", json=too_big)
    assert response.status_code == 422 and "at most" in response.text
