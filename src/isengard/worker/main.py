"""The worker process: claim an entry, run its job, acknowledge; heartbeats; clean shutdown on SIGTERM.

One job at a time. New work arrives through XREADGROUP BLOCK on the streams of the job kinds this worker can run;
between reads it takes over entries whose worker stopped heartbeating (XAUTOCLAIM past the lease). A heartbeat
thread keeps the worker's record, the current job's lease and the entry's idle time fresh while a plugin runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from types import FrameType
from typing import Any

import redis

from isengard.config import Mode, Settings
from isengard.db.session import make_engine, make_sessionmaker
from isengard.plugins.registry import load_registry
from isengard.queue import jobs as queue
from isengard.queue import keys
from isengard.queue.workers import clear_heartbeat, write_heartbeat
from isengard.storage import DataTree
from isengard.worker.placement import runnable_plugins
from isengard.worker.runner import JobRunner
from isengard.worker.watchdog import JobWatchdog

log = logging.getLogger(__name__)

# How long one XREADGROUP waits at most: bounds how late a shutdown or a takeover check can be.
MAX_BLOCK_SECONDS = 2.0
BURST_BLOCK_MS = 100
# Entries are taken over a little after the lease would have expired, so the lease is surely gone by then.
TAKEOVER_MARGIN_MS = 250
# Exit status of a worker that gave up on a job whose plugin would not stop (see worker/watchdog.py); distinct so a
# supervisor's log tells it apart from a crash. EX_SOFTWARE in sysexits.h.
EXIT_JOB_DID_NOT_STOP = 70
# Exit status of a burst run in which a job failed (arq's `run_check` does the same), so a script notices.
EXIT_JOBS_FAILED = 1


def gpu_memory() -> tuple[int, int] | None:
    """(total, free) bytes of this worker's GPU as the driver reports them; None without CUDA.

    Free memory is what other processes (a desktop, another worker) leave: the memory planner fits a job to it.
    """
    # Only when torch is already loaded (or a GPU is expected): importing it costs seconds for nothing otherwise.
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            return int(total), int(free)
    except Exception:
        return None
    return None


def torch_threads_for(settings: Settings) -> int | None:
    """CPU threads torch may use in this worker; None leaves torch's own default (one per core)."""
    if settings.torch_threads is not None:
        return settings.torch_threads
    # Tiny-model steps are too small to gain from threads, and the processes of one machine share its cores:
    # measured 4-25x slower steps with 2 threads than with 1 on a busy 2-core machine.
    return 1 if settings.resolved_mode == Mode.FAST_TEST else None


def limit_torch_threads(settings: Settings) -> int | None:
    """Apply `torch_threads_for` without importing torch: to torch if a plugin loaded it, else to its environment."""
    threads = torch_threads_for(settings)
    if threads is None:
        return None
    # Read by torch's thread pools when it loads, for a plugin that imports torch only once a job runs.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    return threads


class Worker:
    def __init__(self, settings: Settings, *, worker_id: str | None = None, burst: bool = False) -> None:
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.burst = burst
        self.stopping = threading.Event()
        self._heartbeat_stop = threading.Event()
        block = min(settings.heartbeat_seconds, MAX_BLOCK_SECONDS)
        self.block_ms = BURST_BLOCK_MS if burst else max(50, int(block * 1000))
        self.takeover_idle_ms = int(settings.lease_seconds * 1000) + TAKEOVER_MARGIN_MS
        DataTree(settings.data_path).ensure()
        self.engine = make_engine(settings.sqlalchemy_url)
        self.sessions = make_sessionmaker(self.engine)
        assert settings.redis_url, "the worker needs REDIS_URL"
        self.redis = redis.Redis.from_url(
            settings.redis_url, socket_timeout=self.block_ms / 1000 + 10, socket_connect_timeout=5
        )
        self.registry = load_registry(settings)
        # After the registry: plugins' capability checks usually import torch, which is then only configured.
        self.torch_threads = limit_torch_threads(settings)
        self.plugins = runnable_plugins(self.registry)
        self.kinds = list(self.plugins)
        self.runner = JobRunner(
            settings=settings,
            sessions=self.sessions,
            client=self.redis,
            registry=self.registry,
            worker_id=self.worker_id,
            shutdown=self.stopping,
        )
        self.watchdog = JobWatchdog(settings, self.runner)
        self.jobs_done = 0

    # --- Heartbeats ---------------------------------------------------------------------------------------------

    def _info(self) -> dict[str, Any]:
        current = self.runner.current
        gpu = gpu_memory()
        return {
            "id": self.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "kinds": self.kinds,
            "plugins": self.plugins,  # other workers leave a job to this one when they cannot run its plugin
            "gpu_memory_mb": gpu[0] // (1024 * 1024) if gpu else None,
            "gpu_total_bytes": gpu[0] if gpu else None,
            "gpu_free_bytes": gpu[1] if gpu else None,
            "current_job": current.job_id if current else None,
            "state": "stopping" if self.stopping.is_set() else ("busy" if current else "idle"),
        }

    def beat(self) -> None:
        """One heartbeat: the worker record, and the current job's lease and entry."""
        try:
            write_heartbeat(self.redis, self.worker_id, self._info(), self.settings.lease_seconds)
            # Redis answers again: events published while it was away go out now, not with the next event.
            self.runner.states.outbox.flush()
            current = self.runner.current
            if current is None:
                return
            if not queue.renew_lease(self.redis, current.job_id, self.worker_id, self.settings.lease_seconds):
                log.error("lease taken by another worker; stopping this job", extra={"job_id": current.job_id})
                self.runner.lease_lost.set()
                return
            queue.touch(self.redis, current.kind, self.worker_id, current.entry_id)
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis lost the stream: the API re-creates it; keep the lease meanwhile
                return
            log.warning("heartbeat failed", extra={"error": str(exc)})
        except redis.RedisError as exc:
            log.warning("heartbeat failed", extra={"error": str(exc)})

    def _heartbeat_loop(self) -> None:
        # The watchdog runs here, on the same thread as the lease renewals: once it released a lease, no heartbeat
        # can take it back before the process exits.
        interval = min(self.settings.heartbeat_seconds, 1.0)
        last_beat = time.monotonic()
        while not self._heartbeat_stop.wait(interval):
            if time.monotonic() - last_beat >= self.settings.heartbeat_seconds:
                self.beat()
                last_beat = time.monotonic()
            try:
                give_up = self.watchdog.check()
            except Exception:
                log.exception("job watchdog check failed")
                continue
            if give_up:
                self._exit_abandoning_the_job()

    def _exit_abandoning_the_job(self) -> None:
        """The job is failed and its entry acked: leave no trace of this worker, then end the process."""
        self.stopping.set()
        with contextlib.suppress(redis.RedisError):
            clear_heartbeat(self.redis, self.worker_id)
            self._leave_groups()
        log.error("worker exits: a plugin ignored the job timeout", extra={"code": EXIT_JOB_DID_NOT_STOP})
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        # os._exit, not sys.exit: the main thread is stuck in the plugin and would never unwind.
        os._exit(EXIT_JOB_DID_NOT_STOP)

    # --- Claiming -----------------------------------------------------------------------------------------------

    def _takeover(self) -> queue.ClaimedEntry | None:
        for kind in self.kinds:
            reply = queue.autoclaim(self.redis, kind, self.worker_id, self.takeover_idle_ms)
            for entry_id, fields in reply.entries:
                job_id = fields.get(queue.ENTRY_FIELD, "")
                return queue.ClaimedEntry(kind=kind, entry_id=entry_id, job_id=job_id, reclaimed=True)
        return None

    def next_entry(self) -> queue.ClaimedEntry | None:
        return self._takeover() or queue.claim_new(self.redis, self.kinds, self.worker_id, self.block_ms)

    def drained(self) -> bool:
        """Burst mode ends when nothing is waiting and every delivered entry is held by a live lease."""
        for kind in self.kinds:
            for entry_id, _consumer, _idle in queue.pending_entries(self.redis, kind):
                job_id = queue.entry_job_id(self.redis, kind, entry_id)
                if job_id is None or queue.lease_holder(self.redis, job_id) is None:
                    return False
        return True

    def _leave_groups(self) -> None:
        """Remove this worker's consumer from the groups, unless it still holds entries others must take over."""
        for kind in self.kinds:
            if not queue.pending_entries(self.redis, kind, consumer=self.worker_id):
                self.redis.xgroup_delconsumer(keys.job_stream(kind), keys.CONSUMER_GROUP, self.worker_id)

    def _ensure_groups(self) -> None:
        for kind in self.kinds:
            queue.ensure_group(self.redis, kind)

    # --- Main loop ----------------------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self.stopping.set()

    def run(self) -> int:
        """Work until stopped (or, in burst mode, until the queue is drained). Returns the process exit status:
        non-zero after a burst run in which a job failed."""
        log.info(
            "worker started",
            extra={
                "worker_id": self.worker_id,
                "kinds": self.kinds,
                "burst": self.burst,
                "torch_threads": self.torch_threads,
            },
        )
        if not self.kinds:
            log.error("no plugin can run on this machine; /api/capabilities says why", extra={"id": self.worker_id})
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        self.beat()
        heartbeat.start()
        groups_ready = False
        try:
            while not self.stopping.is_set():
                try:
                    if not groups_ready:
                        self._ensure_groups()
                        groups_ready = True
                    if not self.kinds:
                        if self.burst:
                            break
                        self.stopping.wait(self.block_ms / 1000)
                        continue
                    entry = self.next_entry()
                    if entry is None:
                        if self.burst and self.drained():
                            break
                        continue
                    self.runner.handle(entry)
                    self.jobs_done += 1
                    self.beat()
                except redis.ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    groups_ready = False  # Redis came back empty: re-create the groups and go on
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    log.warning("redis unavailable; retrying", extra={"error": str(exc)})
                    groups_ready = False
                    self.stopping.wait(1.0)
        finally:
            self._heartbeat_stop.set()
            heartbeat.join(timeout=5)
            with contextlib.suppress(redis.RedisError):
                clear_heartbeat(self.redis, self.worker_id)
                self._leave_groups()
            self.redis.close()
            self.engine.dispose()
            log.info(
                "worker stopped",
                extra={"worker_id": self.worker_id, "jobs": self.jobs_done, "failed": self.runner.jobs_failed},
            )
        if self.burst and self.runner.jobs_failed:
            return EXIT_JOBS_FAILED
        return 0


def run_worker(settings: Settings, *, burst: bool = False, worker_id: str | None = None) -> int:
    """Run a worker until SIGTERM/SIGINT (or, with `burst`, until the queue is drained). Returns an exit code."""
    worker = Worker(settings, worker_id=worker_id, burst=burst)
    signals_seen = 0

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen > 1:
            # A second signal means "now": the entry stays unacked and is taken over after the lease.
            raise SystemExit(128 + signum)
        log.info("stopping after the current step", extra={"signal": signal.Signals(signum).name})
        worker.request_stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    code = worker.run()
    log.debug("worker ran", extra={"seconds": round(time.monotonic() - started, 3)})
    return code
