"""Every body is bounded before it is parsed: a JSON bomb sent to the public login (or any JSON route) is answered
413 without the API's memory growing, whether the body announces its size or arrives chunked."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from isengard.api.app import create_app
from isengard.config import Settings
from isengard.db.migrate import upgrade
from tests.conftest import make_settings
from tests.support.live_server import serve_in_thread

BOMB_BYTES = 16 * 1024 * 1024
# Parsed, a bomb of this size is several hundred megabytes of Python objects; bounded, it is never held at all.
MAX_RSS_GROWTH = 60 * 1024 * 1024


def _bomb() -> bytes:
    pad = b",".join([b"{}"] * (BOMB_BYTES // 3))
    return b'{"token":"x","pad":[' + pad + b"]}"


class PeakRss:
    """Samples this process's resident memory while the block runs (the server runs in a thread of it)."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


@pytest.fixture()
def exposed_settings(data_dir: Path, redis_url: str) -> Settings:
    settings = make_settings(data_dir, redis_url=redis_url, api_token="a-token-long-enough-for-tests")
    upgrade(settings.sqlalchemy_url)
    return settings


@pytest.fixture()
def base_url(exposed_settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(exposed_settings)) as url:
        yield url


def _chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _post(url: str, content: bytes | Iterator[bytes], **headers: str) -> httpx.Response:
    try:
        return httpx.post(url, content=content, headers={"content-type": "application/json", **headers}, timeout=60)
    except httpx.WriteError as exc:  # pragma: no cover - the server may close before the client finished writing
        pytest.fail(f"the server closed the connection without an answer: {exc}")


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_login_bomb_is_refused_before_it_is_parsed(base_url: str, framing: str) -> None:
    body = _bomb()
    content: bytes | Iterator[bytes] = body if framing == "content-length" else _chunks(body)
    with PeakRss() as rss:
        response = _post(f"{base_url}/api/auth/login", content)
    assert response.status_code == 413, response.text
    assert "larger than the limit" in response.json()["detail"]
    assert rss.growth < MAX_RSS_GROWTH, f"RSS grew by {rss.growth / 2**20:.0f} MiB"


def test_json_route_bomb_is_refused_before_the_token_check_reads_it(base_url: str) -> None:
    body = _bomb()
    with PeakRss() as rss:
        response = _post(
            f"{base_url}/api/characters",
            _chunks(body),
            authorization="Bearer a-token-long-enough-for-tests",
        )
    assert response.status_code == 413, response.text
    assert rss.growth < MAX_RSS_GROWTH


def test_a_login_of_normal_size_still_works(base_url: str) -> None:
    response = httpx.post(f"{base_url}/api/auth/login", json={"token": "a-token-long-enough-for-tests"}, timeout=10)
    assert response.status_code == 200
    assert response.json()["authenticated"] is True
