"""Slow uploads hold sockets, not database connections; a stalled upload gets 408 and leaves nothing behind."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from isengard.api.app import create_app
from isengard.config import Settings
from isengard.db.migrate import upgrade
from tests.conftest import make_settings
from tests.support.live_server import serve_in_thread

# More than the SQLite engine's pool (5 + 10 overflow): each one holding a connection would starve every other
# request for the pool's 30 s timeout.
SLOW_CLIENTS = 16
# Longer than the answer below may take: stalled uploads that held connections would free them only at their 408.
IDLE_TIMEOUT = 8.0
ANSWER_WITHIN = 4.0


@pytest.fixture()
def live(data_dir: Path, redis_url: str) -> Iterator[tuple[str, Settings]]:
    settings = make_settings(data_dir, redis_url=redis_url, upload_idle_timeout_seconds=IDLE_TIMEOUT)
    upgrade(settings.sqlalchemy_url)
    with serve_in_thread(create_app(settings)) as base:
        yield base, settings


def _stalled_upload(base: str, character_id: str) -> socket.socket:
    """An upload that sends its headers and the start of one file, then nothing more."""
    port = int(base.rsplit(":", 1)[1])
    boundary = "slowboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        (
            f"POST /api/characters/{character_id}/images HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 100000\r\n\r\n"
        ).encode()
        + head
    )
    return sock


def test_stalled_uploads_neither_starve_the_database_nor_stay_on_disk(live: tuple[str, Settings]) -> None:
    base, settings = live
    character_id = httpx.post(f"{base}/api/characters", json={"name": "Slow"}).json()["id"]
    sockets = [_stalled_upload(base, character_id) for _ in range(SLOW_CLIENTS)]
    try:
        time.sleep(0.5)  # every upload is in its route, waiting for more body
        started = time.monotonic()
        listed = httpx.get(f"{base}/api/characters", timeout=10)
        assert listed.status_code == 200
        assert time.monotonic() - started < ANSWER_WITHIN
        for sock in sockets:
            answer = sock.recv(4096).decode("latin-1")
            assert answer.startswith("HTTP/1.1 408"), answer[:200]
    finally:
        for sock in sockets:
            sock.close()
    deadline = time.monotonic() + 5
    leftovers = list((settings.data_path / "tmp").iterdir())
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.1)
        leftovers = list((settings.data_path / "tmp").iterdir())
    assert leftovers == []
