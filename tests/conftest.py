"""Shared fixtures: a real Redis (the project's own embedded helper), a real SQLite database, the app."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url

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
    if _database_url:
        values["database_url"] = _database_url[-1]
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
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL from the pgserver wheel (a dev dependency).

    Where it cannot start the PostgreSQL tests are skipped on a workstation, and fail in CI (`CI` set): there a
    database that does not start is a broken build, not a reason to test less. Its folder is not under pytest's
    temporary root: as root, pgserver runs the server as another user, and every pytest session that starts makes
    that root private again (0700), which would take the folder away from a server still running."""
    folder = Path(tempfile.mkdtemp(prefix="isengard-pg-"))
    try:
        import pgserver

        server = pgserver.get_server(str(folder), cleanup_mode="stop")
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL could not be started: {exc}")
        pytest.skip(f"PostgreSQL could not be started here: {exc}")
    # As the README and deploy/compose.yaml write it: plain postgresql://, no driver named.
    yield server.get_uri()
    with contextlib.suppress(Exception):
        server.cleanup()
    shutil.rmtree(folder, ignore_errors=True)
    # pgserver logs once more from an exit hook, after pytest has closed the streams it captured.
    pg_logger = logging.getLogger("pgserver")
    pg_logger.handlers[:] = [logging.NullHandler()]
    pg_logger.propagate = False


# --- One test, both databases ------------------------------------------------------------------------------------
# Test modules marked `databases` run each test that builds settings (uses `data_dir`) twice: on SQLite and on a
# fresh PostgreSQL database of the session's server. make_settings picks the test's database up, so the settings a
# test makes, and the workers and API processes it starts from them, all use it.

_database_url: list[str] = []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("databases") and "data_dir" in metafunc.fixturenames:
        metafunc.parametrize("database", ["sqlite", "postgresql"], indirect=True)


@contextlib.contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server for the length of the block; its URL."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(autouse=True)
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which database this test's settings use: "sqlite" (the default) or "postgresql" (in `databases` modules)."""
    kind: str = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        yield kind
        return
    with fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
        _database_url.append(url)
        try:
            yield kind
        finally:
            _database_url.remove(url)
