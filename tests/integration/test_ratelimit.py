"""Rate limits hold across API processes sharing one Redis, slide with time, and answer 429 with Retry-After."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from isengard.api.app import create_app
from isengard.api.ratelimit import hit, rate_limited
from isengard.config import Settings
from isengard.db.migrate import upgrade
from isengard.queue import keys
from tests.conftest import make_settings


def _app_with_limited_route(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.post("/api/test-generate", dependencies=[Depends(rate_limited("generation"))])
    def generate() -> dict[str, bool]:
        return {"queued": True}

    return app


@pytest.fixture()
def two_apis(data_dir: Path, redis_url: str) -> Iterator[tuple[TestClient, TestClient]]:
    # Two independent app instances (as two API processes would be) over one Redis and one database.
    settings = make_settings(data_dir, redis_url=redis_url, rate_limit_generation=3, rate_limit_login=4)
    upgrade(settings.sqlalchemy_url)
    with ExitStack() as stack:
        first = stack.enter_context(TestClient(_app_with_limited_route(settings)))
        second = stack.enter_context(TestClient(_app_with_limited_route(settings)))
        yield first, second


def test_limit_holds_across_two_api_instances(two_apis: tuple[TestClient, TestClient]) -> None:
    first, second = two_apis
    statuses = [client.post("/api/test-generate").status_code for client in (first, second, first)]
    assert statuses == [200, 200, 200]
    for client in (second, first):
        refused = client.post("/api/test-generate")
        assert refused.status_code == 429
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 60
        detail = refused.json()["detail"]
        assert "at most 3 a minute" in detail
        assert f"try again in {retry_after} s" in detail


def test_limits_are_per_client_address(data_dir: Path, redis_url: str) -> None:
    settings = make_settings(data_dir, redis_url=redis_url, rate_limit_generation=3)
    upgrade(settings.sqlalchemy_url)
    app = _app_with_limited_route(settings)
    with TestClient(app, client=("10.0.0.1", 1000)) as first, TestClient(app, client=("10.0.0.2", 1000)) as second:
        for _ in range(3):
            assert first.post("/api/test-generate").status_code == 200
        assert first.post("/api/test-generate").status_code == 429
        # Another address still has its whole allowance.
        assert second.post("/api/test-generate").status_code == 200


def test_login_attempts_are_limited_per_address_across_instances(data_dir: Path, redis_url: str) -> None:
    settings = make_settings(data_dir, redis_url=redis_url, api_token="the-real-token", rate_limit_login=4)
    upgrade(settings.sqlalchemy_url)
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        statuses = []
        for index in range(6):
            client = first if index % 2 == 0 else second
            # Changing the guessed token (or adding a bearer header) does not escape the per-address count.
            response = client.post(
                "/api/auth/login", json={"token": f"guess-{index}"}, headers={"Authorization": f"Bearer {index}"}
            )
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 401, 429, 429]
        # Even the right token waits: otherwise the limit would tell a guesser when it has found it.
        blocked = first.post("/api/auth/login", json={"token": "the-real-token"})
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) >= 1


def test_window_slides_and_refusals_are_not_counted(redis_client: redis.Redis) -> None:
    key = keys.rate_limit("test", "client-a")
    assert [hit(redis_client, key, limit=2, window_seconds=1).allowed for _ in range(2)] == [True, True]
    refused = hit(redis_client, key, limit=2, window_seconds=1)
    assert not refused.allowed
    assert refused.retry_after_seconds == 1
    # Hammering while refused does not extend the wait.
    for _ in range(20):
        assert not hit(redis_client, key, limit=2, window_seconds=1).allowed
    time.sleep(1.05)
    assert hit(redis_client, key, limit=2, window_seconds=1).allowed
    # The key expires on its own: no unbounded growth of rate-limit keys in Redis.
    ttl_ms = redis_client.pttl(key)
    assert 0 < int(ttl_ms) <= 1000  # type: ignore[arg-type]


def test_no_burst_across_a_window_boundary(redis_client: redis.Redis) -> None:
    # A fixed window would allow `limit` at the end of one minute and `limit` again at the start of the next.
    key = keys.rate_limit("test", "client-b")
    assert all(hit(redis_client, key, limit=3, window_seconds=2).allowed for _ in range(3))
    time.sleep(1.0)
    assert not hit(redis_client, key, limit=3, window_seconds=2).allowed


def test_redis_down_does_not_turn_into_429(data_dir: Path, redis_url: str) -> None:
    # The route itself reports Redis trouble (503); the limiter must not hide it behind "too many requests".
    settings = make_settings(data_dir, redis_url="redis://127.0.0.1:1", rate_limit_generation=1)
    upgrade(settings.sqlalchemy_url)
    with TestClient(_app_with_limited_route(settings)) as client:
        assert [client.post("/api/test-generate").status_code for _ in range(3)] == [200, 200, 200]
