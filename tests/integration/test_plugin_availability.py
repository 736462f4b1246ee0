"""A job is accepted when its plugin can run on the API's machine or on a live worker that says it can run it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from isengard.api.app import create_app
from isengard.config import Settings
from isengard.queue.workers import clear_heartbeat, write_heartbeat
from tests.support.production import production_settings
from tests.support.training_setup import SMALL, make_character


@pytest.fixture()
def production_client(settings: Settings) -> Iterator[TestClient]:
    # Production mode on a machine without CUDA (the base's weights in place): nothing can train here.
    production = production_settings(settings)
    with TestClient(create_app(production)) as client:
        yield client


def test_training_is_refused_until_a_worker_offers_the_plugin(
    production_client: TestClient, redis_client: redis.Redis
) -> None:
    character = make_character(production_client, "Remote Runner", 5)
    body = {"character_id": character, "config": SMALL}
    refused = production_client.post("/api/training", json=body)
    assert refused.status_code == 422
    assert "no live worker offers it" in refused.json()["detail"]

    gpu_worker = {"id": "gpu-1", "kinds": ["training"], "plugins": {"training": ["flux-lora"]}, "gpu_memory_mb": 81559}
    write_heartbeat(redis_client, "gpu-1", gpu_worker, ttl_seconds=30)
    accepted = production_client.post("/api/training", json=body)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "queued"
    health = production_client.get("/api/health").json()
    assert health["workers"]["workers"][0]["plugins"] == {"training": ["flux-lora"]}

    # A worker offering other plugins only does not count.
    clear_heartbeat(redis_client, "gpu-1")
    write_heartbeat(redis_client, "cpu-1", {"id": "cpu-1", "plugins": {"training": ["ai-toolkit"]}}, ttl_seconds=30)
    assert production_client.post("/api/training", json=body).status_code == 422
