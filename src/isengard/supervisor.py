"""The child processes of `isengard up`: the API, whose exit stops everything, and workers and the embedded Redis,
restarted when they die.

A worker can exit without being asked: a crash in native code, the OOM killer, or its watchdog giving up on a
plugin that would not stop (worker/watchdog.py). Its jobs are safe (taken over after the lease, or already failed),
so the right answer is a fresh worker, not a stopped app. Restarts back off (1 s, 2 s, 4 s ... up to a minute) so a
worker that dies at start does not spin; a worker that stayed up a while starts again from the shortest delay.

The embedded Redis is restarted the same way, on the same port and from the same folder, so it reloads its
append-only file (the queue and recent events survive) and every client reconnects to the address it knows.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from isengard.redis_server import EmbeddedRedis, RedisServerError

log = logging.getLogger("isengard.supervisor")

FIRST_RESTART_DELAY_SECONDS = 1.0
MAX_RESTART_DELAY_SECONDS = 60.0
# A worker that ran this long before dying is considered to have been healthy: its backoff starts over.
STABLE_AFTER_SECONDS = 120.0


def start_process(command: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Own process group: a terminal Ctrl-C reaches only `up`, which then stops the children in order.
    return subprocess.Popen(list(command), env=env, start_new_session=True)


@dataclass
class WorkerSlot:
    """One of the workers `up` keeps running, across restarts."""

    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts_in_a_row: int = 0
    restart_at: float | None = None


def restart_delay(restarts_in_a_row: int) -> float:
    return min(MAX_RESTART_DELAY_SECONDS, FIRST_RESTART_DELAY_SECONDS * 2**restarts_in_a_row)


@dataclass
class RedisSlot:
    """The embedded Redis `up` started, kept running across restarts (same port, same folder)."""

    server: EmbeddedRedis
    started_at: float = 0.0
    restarts_in_a_row: int = 0
    restart_at: float | None = None


class Supervisor:
    def __init__(
        self,
        api_command: Sequence[str],
        worker_commands: dict[str, list[str]],
        env: dict[str, str],
        redis_server: EmbeddedRedis | None = None,
    ) -> None:
        self.api_command = list(api_command)
        self.env = env
        self.api: subprocess.Popen[bytes] | None = None
        self.workers = [WorkerSlot(name=name, command=command) for name, command in worker_commands.items()]
        self.redis = RedisSlot(redis_server, started_at=time.monotonic()) if redis_server is not None else None

    def start(self) -> None:
        self.api = start_process(self.api_command, self.env)
        for slot in self.workers:
            self._start_worker(slot, time.monotonic())

    def _start_worker(self, slot: WorkerSlot, now: float) -> subprocess.Popen[bytes]:
        slot.process = start_process(slot.command, self.env)
        slot.started_at = now
        slot.restart_at = None
        return slot.process

    def check(self) -> bool:
        """Restart dead workers when their delay is over; False once the API has exited (time to stop)."""
        if self.api is None or self.api.poll() is not None:
            code = self.api.returncode if self.api is not None else None
            log.error("the API process exited; stopping Isengard", extra={"code": code})
            return False
        now = time.monotonic()
        if self.redis is not None:
            self._check_redis(self.redis, now)
        for slot in self.workers:
            if slot.restart_at is not None:
                if now >= slot.restart_at:
                    process = self._start_worker(slot, now)
                    log.warning("worker restarted", extra={"worker": slot.name, "pid": process.pid})
                continue
            if slot.process is None or slot.process.poll() is None:
                continue
            if now - slot.started_at >= STABLE_AFTER_SECONDS:
                slot.restarts_in_a_row = 0
            delay = restart_delay(slot.restarts_in_a_row)
            slot.restarts_in_a_row += 1
            slot.restart_at = now + delay
            log.error(
                "worker exited unexpectedly; restarting it",
                extra={
                    "worker": slot.name,
                    "pid": slot.process.pid,
                    "code": slot.process.returncode,
                    "restart_in_s": delay,
                },
            )
        return True

    def _check_redis(self, slot: RedisSlot, now: float) -> None:
        if slot.restart_at is not None:
            if now < slot.restart_at:
                return
            slot.restart_at = None
            dead = slot.server.process
            if dead is not None and dead.stderr is not None:
                dead.stderr.close()
            try:
                slot.server.start()
            except RedisServerError as exc:
                log.error("embedded redis did not start again", extra={"error": str(exc)})
                slot.server.process = None
            else:
                slot.started_at = now
                log.warning("embedded redis restarted", extra={"port": slot.server.port})
                return
        process = slot.server.process
        if process is not None and process.poll() is None:
            return
        if now - slot.started_at >= STABLE_AFTER_SECONDS:
            slot.restarts_in_a_row = 0
        delay = restart_delay(slot.restarts_in_a_row)
        slot.restarts_in_a_row += 1
        slot.restart_at = now + delay
        code = process.returncode if process is not None else None
        log.error("embedded redis exited unexpectedly; restarting it", extra={"code": code, "restart_in_s": delay})

    def processes(self) -> list[subprocess.Popen[bytes]]:
        """Every child that may still run, the API first."""
        found = [self.api] if self.api is not None else []
        return found + [slot.process for slot in self.workers if slot.process is not None]

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every child, wait for all of them together, SIGKILL what is left: none is left running."""
        children = self.processes()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in children:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
