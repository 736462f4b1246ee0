"""An exposed API holds its connections and its lockout: request heads and bodies that do not arrive in time are
cut off, X-Forwarded-For is believed only when asked for (`isengard api --proxy-headers`), and one guesser behind a
shared address cannot lock the signed-in people behind it out."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from isengard.api.app import create_app
from isengard.api.server import uvicorn_options
from isengard.cli.main import build_parser
from isengard.config import Settings
from isengard.db.migrate import upgrade
from tests.conftest import make_settings
from tests.support.live_server import serve_in_thread

TOKEN = "an-exposed-token-of-some-length"


@pytest.fixture()
def exposed(data_dir: Path, redis_url: str) -> Settings:
    settings = make_settings(
        data_dir,
        redis_url=redis_url,
        api_token=TOKEN,
        rate_limit_auth_failures=5,
        header_timeout_seconds=1.0,
        body_timeout_seconds=1.0,
    )
    upgrade(settings.sqlalchemy_url)
    return settings


@pytest.fixture()
def base(exposed: Settings) -> Iterator[str]:
    # The options `isengard api` runs uvicorn with, except the address serve_in_thread picks.
    options: dict[str, Any] = {k: v for k, v in uvicorn_options(exposed).items() if k not in ("host", "port")}
    with serve_in_thread(create_app(exposed), **options) as url:
        yield url


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_a_connection_that_sends_nothing_is_closed(base: str) -> None:
    with _connect(base) as sock:
        assert _closed_within(sock, 5), "an idle connection is closed after the header timeout"


def test_a_request_head_trickled_byte_by_byte_is_cut_off(base: str) -> None:
    with _connect(base) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 5:
            try:
                sock.sendall(b"X")
            except OSError:
                closed = True
                break
            time.sleep(0.2)
        assert closed or _closed_within(sock, 1), "a trickled head does not keep the connection"


def test_a_stalled_body_is_answered_408(base: str) -> None:
    with _connect(base) as sock:
        head = (
            "POST /api/characters HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"name": "slo')
        sock.settimeout(10)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_x_forwarded_for_is_not_believed_by_default(base: str) -> None:
    codes = [
        httpx.get(
            f"{base}/api/characters",
            headers={"Authorization": "Bearer wrong-guess", "X-Forwarded-For": f"203.0.113.{i}"},
            timeout=10,
        ).status_code
        for i in range(8)
    ]
    assert codes[:5] == [401] * 5
    assert codes[5:] == [429] * 3, "a rotated X-Forwarded-For does not reset the count"


def test_a_guesser_behind_a_shared_address_does_not_lock_out_the_signed_in(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as browser:
        assert browser.post("/api/auth/login", json={"token": TOKEN}).status_code == 200
        for _ in range(6):
            httpx.get(f"{base}/api/characters", headers={"Authorization": "Bearer wrong"}, timeout=10)
        guess = httpx.get(f"{base}/api/characters", headers={"Authorization": "Bearer another"}, timeout=10)
        assert guess.status_code == 429, "the address is locked for wrong tokens"
        assert browser.get("/api/characters").status_code == 200, "a signed-in browser is not locked out"
        script = httpx.get(f"{base}/api/characters", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert script.status_code == 200, "a script with the token behind the same address is not locked out"


@pytest.fixture()
def behind_proxy(data_dir: Path, redis_url: str) -> Iterator[str]:
    settings = make_settings(
        data_dir,
        redis_url=redis_url,
        api_token=TOKEN,
        rate_limit_auth_failures=5,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )
    upgrade(settings.sqlalchemy_url)
    options: dict[str, Any] = {k: v for k, v in uvicorn_options(settings).items() if k not in ("host", "port")}
    with serve_in_thread(create_app(settings), **options) as url:
        yield url


def test_one_guess_rotated_across_addresses_is_locked_out(behind_proxy: str) -> None:
    def ask(token: str, address: str) -> int:
        headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": address}
        return httpx.get(f"{behind_proxy}/api/characters", headers=headers, timeout=10).status_code

    codes = [ask("the-same-guess", f"203.0.113.{i}") for i in range(8)]
    assert codes[:5] == [401] * 5
    assert codes[5:] == [429] * 3, "the guess is locked out whichever address sends it"
    assert ask("a-new-guess", "203.0.113.50") == 401, "other guesses from fresh addresses are only refused"
    assert ask(TOKEN, "203.0.113.51") == 200


def test_connections_are_bounded(data_dir: Path) -> None:
    options = uvicorn_options(make_settings(data_dir, max_connections=3))
    assert options["limit_concurrency"] == 3


def test_connections_past_the_bound_are_answered_503(data_dir: Path, redis_url: str) -> None:
    settings = make_settings(data_dir, redis_url=redis_url, api_token=TOKEN, max_connections=2)
    upgrade(settings.sqlalchemy_url)
    options: dict[str, Any] = {k: v for k, v in uvicorn_options(settings).items() if k not in ("host", "port")}
    with serve_in_thread(create_app(settings), **options) as url:
        idle = [_connect(url) for _ in range(2)]
        try:
            time.sleep(0.2)  # let the server accept them
            answer = httpx.get(f"{url}/api/auth/session", timeout=10)
            assert answer.status_code == 503
        finally:
            for sock in idle:
                sock.close()


def test_isengard_api_accepts_the_readme_proxy_options(data_dir: Path) -> None:
    args = build_parser().parse_args(["api", "--proxy-headers", "--forwarded-allow-ips", "10.0.0.2"])
    assert args.proxy_headers is True and args.forwarded_allow_ips == "10.0.0.2"
    settings = make_settings(data_dir, proxy_headers=True, forwarded_allow_ips="10.0.0.2")
    options = uvicorn_options(settings)
    assert options["proxy_headers"] is True and options["forwarded_allow_ips"] == "10.0.0.2"
    assert uvicorn_options(make_settings(data_dir))["proxy_headers"] is False
