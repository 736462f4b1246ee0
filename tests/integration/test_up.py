"""`isengard up` as a person runs it: one command brings up Redis, the API and a worker; Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

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


def test_up_starts_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "ISENGARD_DATA_DIR": str(tmp_path / "data"),
        "ISENGARD_PORT": str(port),
        "ISENGARD_MODE": "fast-test",
        "ISENGARD_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "isengard.cli", "up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        health: dict[str, object] = {}
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).json()
            except httpx.HTTPError:
                time.sleep(0.5)
                continue
            if health.get("status") == "ok":
                break
            time.sleep(0.5)
        assert health.get("status") == "ok", health
        assert health["workers"]["count"] == 1  # type: ignore[index]
        children = _descendants(proc.pid)
        assert len(children) >= 3  # redis-server, the API, one worker
        assert (tmp_path / "data" / "redis" / "redis.pid").exists()
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert f"http://127.0.0.1:{port}" in output
    time.sleep(0.5)
    assert not [pid for pid in children if _alive(pid)], "processes left running after Ctrl-C"
    assert not (tmp_path / "data" / "redis" / "redis.pid").exists()
