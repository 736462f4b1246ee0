"""`isengard up` as a person runs it: one command brings up Redis, the API and a worker; Ctrl-C stops them all; a
child that dies (the API, a worker, Redis) is brought back."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import isengard
from isengard.redis_server import free_port

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError):
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            found |= {child} | _descendants(child)
    return found


def _up_env(tmp_path: Path, port: int, log_level: str) -> dict[str, str]:
    """A bare environment for `isengard up` in `tmp_path`: nothing of the developer's ISENGARD_* settings."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # The source tree under test, also when the installed package points elsewhere.
        "PYTHONPATH": str(Path(isengard.__file__).resolve().parents[1]),
        "HOME": str(tmp_path),
        "ISENGARD_DATA_DIR": str(tmp_path / "data"),
        "ISENGARD_PORT": str(port),
        "ISENGARD_MODE": "fast-test",
        "ISENGARD_LOG_LEVEL": log_level,
    }


def _start_up(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = _up_env(tmp_path, port, "WARNING")
    proc = subprocess.Popen(
        [sys.executable, "-m", "isengard.cli", "up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, port


def _health(port: int) -> dict[str, Any]:
    try:
        found: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).json()
    except httpx.HTTPError:
        return {}
    return found


def test_up_starts_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    proc, port = _start_up(tmp_path)
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            health = _health(port)
            if health.get("status") == "ok":
                break
            time.sleep(0.5)
        assert health.get("status") == "ok", health
        assert health["workers"]["count"] == 1
        children = _descendants(proc.pid)
        assert len(children) >= 3  # redis-server, the API, one worker
        assert (tmp_path / "data" / "redis" / "redis.pid").exists()
        # `up` announces the URL on its own poll of the health route: Ctrl-C only once it has said where it runs.
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
        reader.start()
        url_deadline = time.monotonic() + 60
        while not any(f"http://127.0.0.1:{port}" in line for line in list(lines)) and time.monotonic() < url_deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        reader.join(timeout=10)
        output = "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert f"http://127.0.0.1:{port}" in output
    time.sleep(0.5)
    assert not [pid for pid in children if _alive(pid)], "processes left running after Ctrl-C"
    assert not (tmp_path / "data" / "redis" / "redis.pid").exists()


def _wait_for_worker(proc: subprocess.Popen[str], port: int, *, other_than: int | None = None) -> int:
    """The pid of the (one) live worker in /api/health, once it differs from `other_than`."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        health = _health(port)
        workers = health.get("workers", {}).get("workers", [])
        if health.get("status") == "ok" and len(workers) == 1 and workers[0]["pid"] not in (None, other_than):
            return int(workers[0]["pid"])
        time.sleep(0.5)
    raise AssertionError(f"no new worker in /api/health: {_health(port)}")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def _redis_port(pid: int) -> int:
    # redis-server shows its address in its process title: "redis-server 127.0.0.1:6379".
    found = re.search(r"127\.0\.0\.1:(\d+)", _cmdline(pid))
    assert found, _cmdline(pid)
    return int(found.group(1))


def _wait_healthy(proc: subprocess.Popen[str], port: int, ready: Any = lambda: True) -> dict[str, Any]:
    """/api/health on `port` once it is ok with one worker (and `ready()` holds); `up` must not exit meanwhile."""
    deadline = time.monotonic() + 120
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        health = _health(port)
        if health.get("status") == "ok" and health["workers"]["count"] == 1 and ready():
            return health
        time.sleep(0.5)
    raise AssertionError(f"not healthy again: {health}")


def _api_pids(proc: subprocess.Popen[str]) -> list[int]:
    return [pid for pid in _descendants(proc.pid) if "isengard.cli api" in _cmdline(pid)]


def test_up_survives_kill_9_of_each_child(tmp_path: Path) -> None:
    """The worker, the API and Redis each killed -9 in turn (as the OOM killer would): `up` brings each back (the
    API on the same port, Redis with its data) and keeps running until Ctrl-C."""
    proc, port = _start_up(tmp_path)
    try:
        first = _wait_for_worker(proc, port)
        assert first in _descendants(proc.pid)
        os.kill(first, signal.SIGKILL)
        second = _wait_for_worker(proc, port, other_than=first)
        assert second in _descendants(proc.pid), "the new worker is a child of `up`"

        api = _api_pids(proc)
        assert len(api) == 1, _descendants(proc.pid)
        os.kill(api[0], signal.SIGKILL)
        _wait_healthy(proc, port, ready=lambda: _api_pids(proc) not in ([], api))
        assert len(_api_pids(proc)) == 1

        pid_file = tmp_path / "data" / "redis" / "redis.pid"
        first_redis = int(pid_file.read_text())
        redis_port = _redis_port(first_redis)
        client = redis.Redis(port=redis_port)
        client.set("isengard-test-kept", "yes")
        time.sleep(1.5)  # the append-only file is synced every second
        os.kill(first_redis, signal.SIGKILL)
        _wait_healthy(
            proc, port, ready=lambda: pid_file.exists() and pid_file.read_text().strip() not in ("", str(first_redis))
        )
        second_redis = int(pid_file.read_text())
        assert second_redis in _descendants(proc.pid)
        assert _redis_port(second_redis) == redis_port
        assert client.get("isengard-test-kept") == b"yes"
        client.close()

        children = _descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "worker exited unexpectedly" in output
    assert "the API exited unexpectedly" in output
    assert "embedded redis exited unexpectedly" in output
    time.sleep(0.5)
    assert not [pid for pid in children if _alive(pid)], "processes left running after Ctrl-C"
    assert not pid_file.exists()


def test_on_a_terminal_up_logs_plain_text_and_prints_the_url_last(tmp_path: Path) -> None:
    """`make run` in a terminal: readable log lines (not JSON), and the URL as the last line once it works."""
    port = free_port()
    env = _up_env(tmp_path, port, "INFO")
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "isengard.cli", "up"], cwd=tmp_path, env=env, stdin=follower, stdout=follower,
        stderr=follower, start_new_session=True,
    )  # fmt: skip
    os.close(follower)
    output = b""

    def read_for(seconds: float) -> None:
        nonlocal output
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    output += os.read(leader, 65536)
                except OSError:
                    return

    try:
        deadline = time.monotonic() + 150
        while b"Isengard is running at" not in output and time.monotonic() < deadline:
            assert proc.poll() is None, output.decode(errors="replace")
            read_for(0.5)
        read_for(3)  # whatever the processes still print after the URL
        lines = [line.strip() for line in output.decode(errors="replace").splitlines() if line.strip()]
        assert lines[-1] == f"Isengard is running at http://127.0.0.1:{port}  (Ctrl-C stops it)", lines[-5:]
        assert _health(port)["workers"]["count"] == 1, "the URL is printed once the app works"
        logged = lines[:-1]
        assert logged and not [line for line in logged if line.startswith("{")], logged[:5]
        # No wall of third-party import chatter (torchao's optional kernels, torch deprecations, bitsandbytes)
        # before the URL: only Isengard's own lines.
        chatter = [line for line in logged if re.search(r"torchao|triton|_pytree|bitsandbytes|Warning\b", line)]
        assert not chatter, chatter[:5]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(leader)
