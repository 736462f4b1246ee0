"""Auth and the browser boundary as an attacker tries it: token guessing, rate-limit evasion, DNS rebinding,
cross-origin writes, and what an error or a planted link gives away."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from isengard.api.app import create_app
from isengard.api.ratelimit import rate_limited
from isengard.config import Settings
from isengard.db.migrate import upgrade
from isengard.db.session import make_engine
from tests.conftest import make_settings
from tests.support.training_setup import make_character

TOKEN = "a-long-enough-token-for-tests"


def _client(settings: Settings, **options: object) -> TestClient:
    upgrade(settings.sqlalchemy_url)
    return TestClient(create_app(settings), **options)  # type: ignore[arg-type]


@pytest.fixture()
def open_local(data_dir: Path, redis_url: str) -> Iterator[TestClient]:
    """The default setup: no token, loopback only; requests come as the browser on this machine sends them."""
    settings = make_settings(data_dir, redis_url=redis_url, allowed_hosts=[])
    with _client(settings, base_url="http://127.0.0.1:8000") as client:
        yield client


def test_without_a_token_only_loopback_host_names_are_answered(open_local: TestClient) -> None:
    # A page on evil.example that rebinds its name to 127.0.0.1 sends its own name as Host and as Origin.
    rebound = {"Host": "evil.example:8000", "Origin": "http://evil.example:8000"}
    assert open_local.post("/api/characters", json={"name": "Rebound"}, headers=rebound).status_code == 400
    assert open_local.get("/api/characters", headers={"Host": "evil.example:8000"}).status_code == 400
    assert open_local.get("/api/characters").json() == []
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost"):
        assert open_local.get("/api/characters", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_extend_the_loopback_names(data_dir: Path, redis_url: str) -> None:
    settings = make_settings(data_dir, redis_url=redis_url, allowed_hosts=["studio.lan"])
    with _client(settings) as client:
        assert client.get("/api/characters", headers={"Host": "studio.lan:8000"}).status_code == 200
        assert client.get("/api/characters", headers={"Host": "other.lan:8000"}).status_code == 400


def test_without_a_token_cross_origin_writes_are_refused(open_local: TestClient) -> None:
    other = open_local.post("/api/characters", json={"name": "A"}, headers={"Origin": "http://127.0.0.1:9999"})
    assert other.status_code == 403
    other_scheme = open_local.post("/api/characters", json={"name": "B"}, headers={"Origin": "https://127.0.0.1:8000"})
    assert other_scheme.status_code == 403
    assert open_local.get("/api/characters", headers={"Origin": "http://elsewhere.example"}).status_code == 200
    own = open_local.post("/api/characters", json={"name": "C"}, headers={"Origin": "http://127.0.0.1:8000"})
    assert own.status_code == 201
    assert open_local.post("/api/characters", json={"name": "D"}).status_code == 201  # scripts send no Origin


def test_cookie_writes_compare_the_scheme_of_the_origin(data_dir: Path, redis_url: str) -> None:
    settings = make_settings(data_dir, redis_url=redis_url, api_token=TOKEN)
    with _client(settings, base_url="http://127.0.0.1:8000") as client:
        assert client.post("/api/auth/login", json={"token": TOKEN}).status_code == 200
        https = client.post("/api/characters", json={"name": "A"}, headers={"Origin": "https://127.0.0.1:8000"})
        assert https.status_code == 403
        same = client.post("/api/characters", json={"name": "B"}, headers={"Origin": "http://127.0.0.1:8000"})
        assert same.status_code == 201


def test_bearer_guessing_is_rate_limited_per_address(data_dir: Path, redis_url: str) -> None:
    settings = make_settings(data_dir, redis_url=redis_url, api_token=TOKEN, rate_limit_auth_failures=5)
    with _client(settings, client=("10.0.0.1", 5000)) as guesser, _client(settings, client=("10.0.0.2", 5000)) as other:
        statuses = [
            guesser.get("/api/characters", headers={"Authorization": f"Bearer guess-{i}"}).status_code for i in range(8)
        ]
        assert statuses == [401] * 5 + [429] * 3
        refused = guesser.get("/api/characters", headers={"Authorization": "Bearer one-more-guess"})
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # The right token is compared first and passes: others behind the address are not locked out.
        assert guesser.get("/api/characters", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        # Another address is not affected, and a request with the right token is never counted.
        for _ in range(8):
            assert other.get("/api/characters", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def _limited_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.post("/api/test-generate", dependencies=[Depends(rate_limited("generation"))])
    def generate() -> dict[str, bool]:
        return {"queued": True}

    return app


@pytest.mark.parametrize("token", [None, TOKEN])
def test_a_new_authorization_header_per_request_does_not_escape_rate_limits(
    data_dir: Path, redis_url: str, token: str | None
) -> None:
    settings = make_settings(data_dir, redis_url=redis_url, api_token=token, rate_limit_generation=3)
    upgrade(settings.sqlalchemy_url)
    with TestClient(_limited_app(settings)) as client:
        if token:  # a browser's session cookie proves who it is; the bearer value it adds proves nothing
            assert client.post("/api/auth/login", json={"token": token}).status_code == 200
        statuses = []
        for index in range(5):
            headers = {"Authorization": f"Bearer random-{index}"}
            statuses.append(client.post("/api/test-generate", headers=headers).status_code)
        assert statuses == [200, 200, 200, 429, 429]


@pytest.fixture()
def failing_app(data_dir: Path, redis_url: str) -> Iterator[TestClient]:
    """An app whose database lost a table: listing characters fails with an error no route expects."""
    settings = make_settings(data_dir, redis_url=redis_url)
    upgrade(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE characters"))
    engine.dispose()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_a_500_keeps_its_correlation_id_and_security_headers(failing_app: TestClient) -> None:
    response = failing_app.get("/api/characters", headers={"X-Correlation-ID": "trace-me-1"})
    assert response.status_code == 500
    assert response.json()["correlation_id"] == "trace-me-1"
    assert response.headers["x-correlation-id"] == "trace-me-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "characters" not in response.text


def test_files_reached_through_links_are_not_served(client: TestClient, settings: Settings, tmp_path: Path) -> None:
    character = make_character(client, "Linked", 2)
    first, second = client.get("/api/images", params={"character_id": character}).json()["items"]
    data = settings.data_path
    # A thumbnail folder replaced by a link to a folder outside the data tree.
    outside = tmp_path / "outside"
    outside.mkdir()
    thumbs = data / "thumbnails" / character
    for thumb in thumbs.iterdir():
        os.replace(thumb, outside / thumb.name)
    thumbs.rmdir()
    os.symlink(outside, thumbs)
    assert client.get(f"/api/images/{first['id']}/thumbnail").status_code == 404
    # An original replaced by a link to another file inside the tree.
    stored = sorted((data / "uploads" / character).glob(f"{first['id']}.*"))[0]
    other = sorted((data / "uploads" / character).glob(f"{second['id']}.*"))[0]
    stored.unlink()
    os.symlink(other, stored)
    assert client.get(f"/api/images/{first['id']}/file").status_code == 404
    assert client.get(f"/api/images/{second['id']}/file").status_code == 200
