"""The OpenAPI schema tells clients how to authenticate and every status a route can answer."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from isengard.api.auth import PUBLIC_API_PATHS
from isengard.config import Settings
from isengard.db.models import Job
from isengard.db.session import make_engine

WRITE_AND_READ = {"get", "post", "put", "patch", "delete"}


@pytest.fixture()
def schema(client: TestClient) -> dict[str, Any]:
    found: dict[str, Any] = client.get("/api/openapi.json").json()
    return found


def _statuses(schema: dict[str, Any], method: str, path: str) -> set[int]:
    return {int(code) for code in schema["paths"][path][method]["responses"]}


def test_the_bearer_and_cookie_schemes_are_declared(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["session"] == {**schemes["session"], "type": "apiKey", "in": "cookie", "name": "isengard_session"}
    assert schema["security"] == [{"bearer": []}, {"session": []}]
    for path in PUBLIC_API_PATHS:
        for operation in schema["paths"][path].values():
            assert operation["security"] == []


def test_every_protected_operation_documents_401_and_429(schema: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}: {code}"
        for path, operations in schema["paths"].items()
        if path not in PUBLIC_API_PATHS
        for method in operations
        if method in WRITE_AND_READ
        for code in (401, 429)
        if code not in _statuses(schema, method, path)
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        ("post", "/api/characters/{character_id}/images", {408, 415, 422, 429}),
        ("post", "/api/loras/import", {408, 413, 415, 422, 429}),
        ("post", "/api/characters", {409, 422}),
        ("patch", "/api/characters/{character_id}", {409, 422}),
        ("delete", "/api/characters/{character_id}", {409}),
        ("post", "/api/training/presets", {409, 422}),
        ("post", "/api/jobs/{job_id}/cancel", {409}),
        ("post", "/api/generations/{generation_id}/again", {409}),
        ("post", "/api/auth/login", {401, 429}),
    ],
)
def test_route_specific_statuses_are_documented(
    schema: dict[str, Any], method: str, path: str, codes: set[int]
) -> None:
    assert codes <= _statuses(schema, method, path)


def test_the_statuses_routes_answer_are_the_documented_ones(
    client: TestClient, schema: dict[str, Any], settings: Settings
) -> None:
    character = client.post("/api/characters", json={"name": "Doc"}).json()["id"]
    not_multipart = client.post(f"/api/characters/{character}/images", json={"files": []})
    assert not_multipart.status_code == 415
    assert 415 in _statuses(schema, "post", "/api/characters/{character_id}/images")
    engine = make_engine(settings.sqlalchemy_url)
    with Session(engine) as db:
        job = Job(kind="generation", status="succeeded", plugin="diffusers")
        db.add(job)
        db.commit()
        job_id = job.id
    engine.dispose()
    finished = client.post(f"/api/jobs/{job_id}/cancel")
    assert finished.status_code == 409
    assert 409 in _statuses(schema, "post", "/api/jobs/{job_id}/cancel")
