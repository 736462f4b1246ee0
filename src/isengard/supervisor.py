"""The child processes of `isengard up`: the API, the workers and the embedded Redis, each restarted when it dies.

On one machine `up` is the supervisor: nothing else would bring a process back. The API can be OOM-killed or
killed -9 like any process; it is started again on the same port (its settings come from the same environment),
and the web app's live streams reconnect on their own. Workers and Redis keep running meanwhile, so a dead API
costs seconds of unanswered requests, not the queue.

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
    """One of the processes `up` keeps running (the API or a worker), across restarts."""

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
        self.env = env
        self.api_slot = WorkerSlot(name="api", command=list(api_command))
        self.workers = [WorkerSlot(name=name, command=command) for name, command in worker_commands.items()]
        self.redis = RedisSlot(redis_server, started_at=time.monotonic()) if redis_server is not None else None

    @property
    def api(self) -> subprocess.Popen[bytes] | None:
        return self.api_slot.process

    def start(self) -> None:
        self._start_worker(self.api_slot, time.monotonic())
        for slot in self.workers:
            self._start_worker(slot, time.monotonic())

    def _start_worker(self, slot: WorkerSlot, now: float) -> subprocess.Popen[bytes]:
        slot.process = start_process(slot.command, self.env)
        slot.started_at = now
        slot.restart_at = None
        return slot.process

    def check(self) -> None:
        """Restart dead children when their delay is over: `up` stops only when it is asked to."""
        now = time.monotonic()
        if self.redis is not None:
            self._check_redis(self.redis, now)
        for slot in [self.api_slot, *self.workers]:
            self._check_slot(slot, now)

    def _check_slot(self, slot: WorkerSlot, now: float) -> None:
        what = "the API" if slot is self.api_slot else "worker"
        if slot.restart_at is not None:
            if now >= slot.restart_at:
                process = self._start_worker(slot, now)
                log.warning(f"{what} restarted", extra={"child": slot.name, "pid": process.pid})
            return
        if slot.process is None or slot.process.poll() is None:
            return
        if now - slot.started_at >= STABLE_AFTER_SECONDS:
            slot.restarts_in_a_row = 0
        delay = restart_delay(slot.restarts_in_a_row)
        slot.restarts_in_a_row += 1
        slot.restart_at = now + delay
        log.error(
            f"{what} exited unexpectedly; restarting it",
            extra={
                "child": slot.name,
                "pid": slot.process.pid,
                "code": slot.process.returncode,
                "restart_in_s": delay,
            },
        )

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
        return [slot.process for slot in [self.api_slot, *self.workers] if slot.process is not None]

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
