"""The embedded Redis: starts on loopback under the given folder, answers, persists, stops by PID."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from isengard.redis_server import EmbeddedRedis, RedisServerError, find_redis_server


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_and_stop(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    pid = server.process.pid if server.process else -1
    try:
        assert (tmp_path / "redis" / "redis.pid").read_text() == str(pid)
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        info = client.info("server")
        assert tuple(int(p) for p in str(info["redis_version"]).split(".")[:2]) >= (6, 2)
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        client.close()
    finally:
        server.stop()
    assert not _pid_alive(pid)
    assert not (tmp_path / "redis" / "redis.pid").exists()
    # Data written with persistence on survives a restart.
    again = EmbeddedRedis(tmp_path / "redis", port=server.port).start()
    try:
        assert redis.Redis.from_url(again.url).get("k") == b"v"
    finally:
        again.stop()


def test_binary_is_found() -> None:
    assert Path(find_redis_server()).exists()


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "a") as first, pytest.raises(RedisServerError):
        EmbeddedRedis(tmp_path / "b", port=first.port).start(timeout=5)
