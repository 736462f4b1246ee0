"""Shared fixtures: a real Redis (the project's own embedded helper), a real SQLite database, the app."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from isengard.api.app import create_app
from isengard.config import Settings
from isengard.db.migrate import upgrade
from isengard.redis_server import EmbeddedRedis

# Tests never read a developer's .env or environment overrides.
for _name in list(os.environ):
    if _name.startswith("ISENGARD_") or _name in {"DATABASE_URL", "REDIS_URL"}:
        del os.environ[_name]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield server
    server.stop()


@pytest.fixture()
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture()
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "mode": "fast-test",
        "data_dir": data_dir,
        "database_url": f"sqlite:///{data_dir / 'isengard.db'}",
        "log_json": True,
        # The test client's default Host header; without a token only loopback names (and these) are answered.
        "allowed_hosts": ["testserver"],
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture()
def settings(data_dir: Path, redis_url: str) -> Settings:
    settings = make_settings(data_dir, redis_url=redis_url)
    upgrade(settings.sqlalchemy_url)
    return settings


@pytest.fixture()
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway PostgreSQL from the pgserver wheel; skipped where it cannot start."""
    try:
        import pgserver
    except ImportError:
        pytest.skip("pgserver is not installed")
    try:
        server = pgserver.get_server(str(tmp_path_factory.mktemp("pg")), cleanup_mode="stop")
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL could not be started here: {exc}")
    uri = server.get_uri()
    yield uri.replace("postgresql://", "postgresql+psycopg2://", 1) if uri.startswith("postgresql://") else uri
    with contextlib.suppress(Exception):
        server.cleanup()
    # pgserver logs once more from an exit hook, after pytest has closed the streams it captured.
    pg_logger = logging.getLogger("pgserver")
    pg_logger.handlers[:] = [logging.NullHandler()]
    pg_logger.propagate = False
