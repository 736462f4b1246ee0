"""Health (database, Redis, workers), capabilities, OpenAPI, correlation ids and security headers."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from isengard.queue.workers import clear_heartbeat, write_heartbeat


def test_health_reports_components(client: TestClient, redis_client) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/api/health").json()
    assert body["database"]["status"] == "up"
    assert body["redis"]["status"] == "up"
    assert body["workers"]["status"] == "down"
    assert body["status"] == "degraded"
    write_heartbeat(redis_client, "w1", {"id": "w1", "kinds": ["training"], "gpu_memory_mb": 0}, ttl_seconds=5)
    body = client.get("/api/health").json()
    assert body["workers"]["status"] == "up"
    assert body["workers"]["workers"][0]["kinds"] == ["training"]
    assert body["status"] == "ok"
    clear_heartbeat(redis_client, "w1")
    assert client.get("/api/health").json()["workers"]["count"] == 0


def test_a_worker_that_stopped_beating_is_down_before_its_record_expires(  # type: ignore[no-untyped-def]
    client: TestClient, settings, redis_client
) -> None:
    write_heartbeat(redis_client, "w-dead", {"id": "w-dead", "kinds": ["training"]}, ttl_seconds=60)
    assert client.get("/api/health").json()["workers"]["count"] == 1
    # The record stays (its TTL is a lease) while no beat comes: as after kill -9, a few beats later.
    record = json.loads(redis_client.get("isengard:worker:w-dead"))
    record["beat_at"] -= settings.heartbeat_seconds * 4
    redis_client.set("isengard:worker:w-dead", json.dumps(record), px=60_000)
    workers = client.get("/api/health").json()["workers"]
    assert workers["status"] == "down" and workers["count"] == 0
    assert workers["workers"][0]["alive"] is False
    assert workers["workers"][0]["last_beat_seconds"] >= settings.heartbeat_seconds * 4
    assert "w-dead stopped sending heartbeats" in workers["detail"]
    clear_heartbeat(redis_client, "w-dead")


def test_health_when_redis_is_down(settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from isengard.api.app import create_app

    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(broken)) as client:
        body = client.get("/api/health").json()
    assert body["redis"]["status"] == "down"
    assert body["database"]["status"] == "up"
    assert body["status"] == "degraded"


def test_capabilities(client: TestClient) -> None:
    body = client.get("/api/capabilities").json()
    assert body["mode"] == "fast-test"
    assert set(body["plugins"]) == {"training", "image", "video", "caption", "evaluate"}
    assert body["torch"]["version"]
    assert "present" in body["model"]
    # Every base of the registry, each with its licence and defaults; fast-test builds each one's tiny model.
    bases = {base["name"]: base for base in body["bases"]}
    assert {"flux1-dev", "flux1-krea-dev", "flux2-klein-4b", "flux2-klein-9b"} <= set(bases)
    assert [name for name, base in bases.items() if base["default"]] == ["flux1-dev"]
    assert bases["flux2-klein-4b"]["licence"] == "Apache-2.0" and bases["flux2-klein-4b"]["commercial_use"]
    assert all(base["available"] and base["defaults"]["sample_steps"] > 0 for base in bases.values())


def test_openapi_and_docs(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    assert "/api/health" in schema["paths"]
    assert client.get("/api/docs").status_code == 200


def test_unknown_api_path_is_json_404(client: TestClient) -> None:
    response = client.get("/api/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")


def test_correlation_id_round_trip_and_logs(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    from isengard.logging import JsonFormatter

    response = client.get("/api/health", headers={"X-Correlation-ID": "abc-123"})
    assert response.headers["x-correlation-id"] == "abc-123"
    made = client.get("/api/health").headers["x-correlation-id"]
    assert len(made) == 32
    # A hostile id is replaced, not echoed.
    assert client.get("/api/health", headers={"X-Correlation-ID": "bad id\r\n"}).headers["x-correlation-id"] != "bad id"

    from isengard.logging import correlation_id

    token = correlation_id.set("corr-42")
    try:
        record = logging.LogRecord("isengard.test", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        record.job = "j1"
        line = json.loads(JsonFormatter().format(record))
    finally:
        correlation_id.reset(token)
    assert line["correlation_id"] == "corr-42"
    assert line["message"] == "hello world"
    assert line["level"] == "INFO"
    assert line["logger"] == "isengard.test"
    assert line["job"] == "j1"
    assert "timestamp" in line


def test_security_headers(client: TestClient) -> None:
    headers = client.get("/api/health").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_bases_route_lists_what_capabilities_list(client: TestClient) -> None:
    bases = client.get("/api/bases").json()
    assert [base["name"] for base in bases] == [
        base["name"] for base in client.get("/api/capabilities").json()["bases"]
    ]
