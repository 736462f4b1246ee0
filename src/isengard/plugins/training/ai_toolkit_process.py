"""Stopping ai-toolkit: its whole process group, and one an earlier attempt left running.

ai-toolkit runs in its own session so that cancelling reaches every process it started. The flip side: when the
worker that started it is killed with -9, it keeps running. The next attempt finds it through the pid file the run
writes, and stops it only if that process is still ai-toolkit running this job's config (a pid may be reused).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

STOP_GRACE_SECONDS = 10.0


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole group (ai-toolkit starts workers), then SIGKILL what is left after a grace period."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _runs_config(pid: int, config_path: Path) -> bool:
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False  # gone, or no /proc to tell: leave it alone
    return os.fsencode(str(config_path)) in arguments


def _alive(pid: int) -> bool:
    """Still running (a zombie waiting for its parent to reap it has stopped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "State:\tZ" not in status


def stop_leftover(pid_file: Path, config_path: Path) -> bool:
    """Stop the process group named in `pid_file` if it still runs ai-toolkit on `config_path`; True if it did."""
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return False
    pid_file.unlink(missing_ok=True)
    if not _runs_config(pid, config_path):
        return False
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if not _alive(pid):
            return True
    return True
