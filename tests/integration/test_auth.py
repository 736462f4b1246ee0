"""Access control with ISENGARD_API_TOKEN: every data route refuses strangers; bearer header and login cookie work."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount

from isengard.api.app import create_app
from isengard.api.auth import (
    PUBLIC_API_PATHS,
    SESSION_COOKIE,
    SESSION_MAX_AGE_SECONDS,
    make_session_value,
    session_valid,
)
from isengard.config import Settings
from isengard.db.migrate import upgrade
from tests.conftest import make_settings

TOKEN = "correct horse battery staple"


@pytest.fixture()
def token_settings(data_dir: Path, redis_url: str) -> Settings:
    settings = make_settings(data_dir, redis_url=redis_url, api_token=TOKEN, host="0.0.0.0")
    upgrade(settings.sqlalchemy_url)
    return settings


def _with_protected_write_route(app: FastAPI) -> FastAPI:
    @app.post("/api/test-write")
    def write() -> dict[str, bool]:
        return {"written": True}

    return app


@pytest.fixture()
def app(token_settings: Settings, web_dist: Path) -> FastAPI:
    return _with_protected_write_route(create_app(token_settings, web_dist=web_dist))


@pytest.fixture()
def anon(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "00000000000000000000000000", path)


def test_every_api_route_refuses_a_request_without_the_token(anon: TestClient, app: FastAPI) -> None:
    schema_paths = TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}).get("/api/openapi.json").json()
    checked = 0
    for path, operations in schema_paths["paths"].items():
        if path in PUBLIC_API_PATHS:
            continue
        for method in operations:
            response = anon.request(method.upper(), _concrete(path))
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.json() == {"detail": "authentication required"}
            assert response.headers["www-authenticate"].startswith("Bearer")
            checked += 1
    assert checked >= 3
    # The docs, the schema, and unknown API paths are closed too (no probing what exists).
    for path in ("/api/docs", "/api/openapi.json", "/api/health", "/api/does-not-exist", "/api"):
        assert anon.get(path).status_code == 401, path


def test_nothing_with_data_lives_outside_api(app: FastAPI) -> None:
    # Only /api is guarded; a route added elsewhere would be public, so none may exist besides the web bundle.
    outside = []
    for route in app.routes:
        # Routers included with a prefix appear as one entry per router in FastAPI >= 0.160.
        context = getattr(route, "include_context", None)
        path = str(getattr(route, "path", None) or getattr(context, "prefix", ""))
        if path.startswith("/api"):
            continue
        if path == "/docs/oauth2-redirect":  # FastAPI's static OAuth helper page: no data
            continue
        if isinstance(route, Mount) and path == "/assets":
            continue
        if isinstance(route, APIRoute) and path == "/{path:path}" and route.include_in_schema is False:
            continue
        outside.append(path)
    assert outside == []


def test_web_bundle_stays_open_so_the_login_page_loads(anon: TestClient) -> None:
    for path in ("/", "/characters/abc", "/assets/app.js", "/index.html"):
        response = anon.get(path)
        assert response.status_code == 200, path
    assert "Isengard" in anon.get("/").text
    session = anon.get("/api/auth/session")
    assert session.status_code == 200
    assert session.json() == {"auth_required": True, "authenticated": False}


def test_bearer_token(anon: TestClient) -> None:
    assert anon.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert anon.get("/api/health", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    for wrong in (f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}"):
        assert anon.get("/api/health", headers={"Authorization": wrong}).status_code == 401, wrong
    session = anon.get("/api/auth/session", headers={"Authorization": f"Bearer {TOKEN}"})
    assert session.json() == {"auth_required": True, "authenticated": True}


def test_login_sets_a_strict_httponly_cookie_that_opens_the_api(anon: TestClient) -> None:
    wrong = anon.post("/api/auth/login", json={"token": "guess"})
    assert wrong.status_code == 401
    assert "set-cookie" not in wrong.headers
    assert anon.get("/api/health").status_code == 401

    response = anon.post("/api/auth/login", json={"token": TOKEN})
    assert response.status_code == 200
    assert response.json() == {"auth_required": True, "authenticated": True}
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert f"Max-Age={SESSION_MAX_AGE_SECONDS}" in cookie
    assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would never come back
    assert TOKEN not in cookie  # the cookie proves the token without carrying it

    assert anon.get("/api/health").status_code == 200
    assert anon.get("/api/auth/session").json() == {"auth_required": True, "authenticated": True}

    logout = anon.post("/api/auth/logout")
    assert logout.status_code == 200
    assert anon.get("/api/health").status_code == 401
    assert anon.get("/api/auth/session").json()["authenticated"] is False


def test_cookie_is_secure_over_https(app: FastAPI) -> None:
    with TestClient(app, base_url="https://isengard.example") as client:
        response = client.post("/api/auth/login", json={"token": TOKEN})
        assert response.status_code == 200
        assert "Secure" in response.headers["set-cookie"]


def test_login_body_is_bounded(anon: TestClient) -> None:
    assert anon.post("/api/auth/login", json={"token": ""}).status_code == 422
    assert anon.post("/api/auth/login", json={"token": "x" * 5000}).status_code == 422
    assert anon.post("/api/auth/login", json={}).status_code == 422


def test_forged_expired_and_foreign_cookies_are_refused(anon: TestClient) -> None:
    other = make_session_value("another installation's token")
    expired = make_session_value(TOKEN, now=0)
    _, expires, signature = make_session_value(TOKEN).split(".")
    tampered = f"v1.{int(expires) + 10**6}.{signature}"
    for value in (other, expired, tampered, "v1.x.y", "garbage", TOKEN):
        anon.cookies.set(SESSION_COOKIE, value)
        assert anon.get("/api/health").status_code == 401, value
    anon.cookies.clear()
    assert session_valid(make_session_value(TOKEN), TOKEN)
    assert not session_valid(make_session_value(TOKEN), TOKEN, now=10**12)


def test_cookie_writes_must_come_from_our_own_origin(anon: TestClient) -> None:
    assert anon.post("/api/auth/login", json={"token": TOKEN}).status_code == 200
    same = anon.post("/api/test-write", headers={"Origin": "http://testserver"})
    assert same.status_code == 200
    assert anon.post("/api/test-write").status_code == 200  # no Origin: not a browser cross-site request
    for origin in ("http://testserver:3000", "http://evil.example", "null"):
        refused = anon.post("/api/test-write", headers={"Origin": origin})
        assert refused.status_code == 403, origin
    # Reads with the cookie, and writes with the bearer header, are not cross-site forgeries.
    assert anon.get("/api/health", headers={"Origin": "http://evil.example"}).status_code == 200
    anon.cookies.clear()
    bearer = anon.post("/api/test-write", headers={"Origin": "http://evil.example", "Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200


def test_without_a_token_loopback_needs_no_login(client: TestClient) -> None:
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/openapi.json").status_code == 200
    assert client.get("/api/auth/session").json() == {"auth_required": False, "authenticated": True}
    login = client.post("/api/auth/login", json={"token": "anything"})
    assert login.status_code == 200
    assert "set-cookie" not in login.headers
