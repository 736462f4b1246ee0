"""The memory planner seen through the API: workers report their GPU, capabilities carry each worker's plan, a
forced memory profile that fits no worker's GPU is refused, and the estimate says which profile fits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from isengard.api.app import create_app
from isengard.config import Settings
from isengard.models.memory_plan import GIB
from isengard.queue.workers import list_workers, write_heartbeat
from isengard.worker.main import Worker
from tests.support.production import production_settings
from tests.support.training_setup import SMALL, make_character


@pytest.fixture()
def production_client(settings: Settings) -> Iterator[TestClient]:
    # Production mode without CUDA here: runs go to workers, planned for FLUX.1-dev's full-size config.
    production = production_settings(settings)
    with TestClient(create_app(production)) as client:
        yield client


def gpu_worker(redis_client: redis.Redis, worker_id: str, gib: float) -> None:
    record = {
        "id": worker_id,
        "kinds": ["training"],
        "plugins": {"training": ["flux-lora"]},
        "gpu_total_bytes": int(gib * GIB),
        "gpu_free_bytes": int(gib * GIB) - GIB,
    }
    write_heartbeat(redis_client, worker_id, record, ttl_seconds=30)


def test_the_worker_heartbeat_reports_its_gpu_memory(settings: Settings, redis_client: redis.Redis) -> None:
    worker = Worker(settings, worker_id="cpu-worker", burst=True)
    try:
        worker.beat()
    finally:
        worker.engine.dispose()
    (record,) = list_workers(redis_client)
    # This machine has no CUDA: the fields are there, and say so.
    assert "gpu_total_bytes" in record and record["gpu_total_bytes"] is None
    assert "gpu_free_bytes" in record and record["gpu_free_bytes"] is None


def test_capabilities_carry_a_plan_per_worker_gpu(production_client: TestClient, redis_client: redis.Redis) -> None:
    gpu_worker(redis_client, "gpu-24", 24)
    write_heartbeat(redis_client, "cpu-1", {"id": "cpu-1", "gpu_total_bytes": None}, ttl_seconds=30)

    memory = {entry["worker_id"]: entry for entry in production_client.get("/api/capabilities").json()["memory"]}

    assert memory["gpu-24"]["gpu_total_bytes"] == 24 * GIB
    plan = memory["gpu-24"]["plan"]
    assert plan["chosen"] == next(e["profile"] for e in plan["estimates"] if e["fits"])
    assert plan["reason"].startswith(f"fits your 24 GB GPU with {plan['chosen']}")
    generation = memory["gpu-24"]["generation"]
    assert generation["chosen"] == next(e["profile"] for e in generation["estimates"] if e["fits"])
    assert generation["estimates"] != plan["estimates"]
    cpu = memory["cpu-1"]["plan"]
    assert cpu["gpu_bytes"] is None and cpu["chosen"] is None
    assert all(e["fits"] is None for e in cpu["estimates"])
    assert cpu["reason"].startswith("no GPU")


def test_a_forced_profile_that_fits_no_worker_is_refused(
    production_client: TestClient, redis_client: redis.Redis
) -> None:
    character = make_character(production_client, "Memory Bound", 5)
    gpu_worker(redis_client, "gpu-24", 24)

    refused = production_client.post(
        "/api/training", json={"character_id": character, "config": {**SMALL, "memory_profile": "bf16"}}
    )
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert detail.startswith("config.memory_profile: profile bf16 needs an estimated")
    assert "24 GB GPU" in detail and "int8 fits" in detail
    estimate = production_client.post(
        "/api/training/estimate", json={"character_id": character, "config": {**SMALL, "memory_profile": "bf16"}}
    )
    assert estimate.status_code == 422 and estimate.json()["detail"] == detail

    # A larger GPU joins: the same request now has somewhere to run.
    gpu_worker(redis_client, "gpu-80", 80)
    accepted = production_client.post(
        "/api/training", json={"character_id": character, "config": {**SMALL, "memory_profile": "bf16"}}
    )
    assert accepted.status_code == 202, accepted.text


def test_the_estimate_says_which_profile_fits(production_client: TestClient, redis_client: redis.Redis) -> None:
    character = make_character(production_client, "Fit Check", 5)
    body = {"character_id": character, "config": {**SMALL, "resolutions": [1024]}}

    cpu_worker = {"id": "cpu-1", "plugins": {"training": ["flux-lora"]}, "gpu_total_bytes": None}
    write_heartbeat(redis_client, "cpu-1", cpu_worker, ttl_seconds=30)
    unknown = production_client.post("/api/training/estimate", json=body)
    gpu_worker(redis_client, "gpu-24", 24)
    known = production_client.post("/api/training/estimate", json=body).json()

    assert unknown.status_code == 200
    assert unknown.json()["memory_summary"].startswith("no live worker reports a GPU")
    plan = known["memory_plan"]
    chosen = plan["chosen"]
    peak = next(e["estimated_peak_bytes"] for e in plan["estimates"] if e["profile"] == chosen)
    assert known["memory_summary"] == f"fits your 24 GB GPU with {chosen} (est. {peak / GIB:.1f} GB)"
