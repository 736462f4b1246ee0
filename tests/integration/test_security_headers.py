"""Security headers on every response (API, errors, the web bundle) and CORS closed unless origins are set."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from isengard.api.app import create_app
from isengard.config import Settings
from isengard.db.migrate import upgrade
from tests.conftest import make_settings

TOKEN = "s3cret-token-for-headers"


def _client(settings: Settings, web_dist: Path) -> TestClient:
    upgrade(settings.sqlalchemy_url)
    return TestClient(create_app(settings, web_dist=web_dist))


@pytest.fixture()
def secured(data_dir: Path, redis_url: str, web_dist: Path) -> Iterator[TestClient]:
    settings = make_settings(data_dir, redis_url=redis_url, api_token=TOKEN)
    with _client(settings, web_dist) as client:
        yield client


def _assert_hardened(headers: Mapping[str, str], *, csp: bool = True) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    if csp:
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "script-src 'self'" in policy
        assert "'unsafe-eval'" not in policy
        assert "frame-ancestors 'none'" in policy


def test_headers_on_api_errors_and_bundle(secured: TestClient) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path, headers, status in (
        ("/api/health", auth, 200),
        ("/api/health", {}, 401),
        ("/api/nothing-here", auth, 404),
        ("/", {}, 200),
        ("/assets/app.js", {}, 200),
        ("/some/client/route", {}, 200),
    ):
        response = secured.get(path, headers=headers)
        assert response.status_code == status, path
        _assert_hardened(response.headers)
    # Validation errors too.
    bad = secured.post("/api/auth/login", json={"token": 5})
    assert bad.status_code == 422
    _assert_hardened(bad.headers)


def test_docs_page_loads_its_own_assets_but_cannot_be_framed(secured: TestClient) -> None:
    docs = secured.get("/api/docs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert docs.status_code == 200
    _assert_hardened(docs.headers, csp=False)


def test_correlation_id_is_echoed_only_when_harmless(secured: TestClient) -> None:
    echoed = secured.get("/api/auth/session", headers={"X-Correlation-ID": "abc-123"})
    assert echoed.headers["x-correlation-id"] == "abc-123"
    replaced = secured.get("/api/auth/session", headers={"X-Correlation-ID": "bad id\twith spaces" + "x" * 80})
    assert replaced.headers["x-correlation-id"] != "bad id\twith spaces" + "x" * 80
    assert len(replaced.headers["x-correlation-id"]) <= 64


def test_cors_is_closed_by_default(secured: TestClient) -> None:
    preflight = secured.options(
        "/api/health",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    simple = secured.get("/api/health", headers={"Origin": "http://evil.example", "Authorization": f"Bearer {TOKEN}"})
    assert "access-control-allow-origin" not in simple.headers


def test_cors_allows_only_configured_origins(data_dir: Path, redis_url: str, web_dist: Path) -> None:
    settings = make_settings(data_dir, redis_url=redis_url, api_token=TOKEN, cors_origins=["http://ui.example:5173"])
    with _client(settings, web_dist) as client:
        ok = client.options(
            "/api/health",
            headers={"Origin": "http://ui.example:5173", "Access-Control-Request-Method": "GET"},
        )
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "http://ui.example:5173"
        refused = client.options(
            "/api/health",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert refused.headers.get("access-control-allow-origin") != "http://evil.example"
        # A 401 still carries the CORS header for the allowed origin, so the UI can read it and show the login.
        unauthorised = client.get("/api/health", headers={"Origin": "http://ui.example:5173"})
        assert unauthorised.status_code == 401
        assert unauthorised.headers["access-control-allow-origin"] == "http://ui.example:5173"
        # Cookie writes from the configured UI origin are accepted.
        assert client.post("/api/auth/login", json={"token": TOKEN}).status_code == 200
        logout = client.post("/api/auth/logout", headers={"Origin": "http://ui.example:5173"})
        assert logout.status_code == 200
