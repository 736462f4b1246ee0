"""Helpers shared by the job-system tests: settings with the test plugins, worker processes, waiting, a live API."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from isengard.api.app import build_services, create_app
from isengard.api.services.jobs.manage import submit_job
from isengard.api.state import Services
from isengard.config import Settings
from isengard.db.migrate import upgrade
from isengard.db.models import Job
from isengard.db.session import make_engine, make_sessionmaker
from isengard.domain import JobKind
from isengard.jobs.states import Submission
from isengard.worker.main import Worker
from tests.conftest import make_settings
from tests.support.live_server import serve_in_thread

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGINS = "tests.plugins.queue_plugins"


def queue_settings(data_dir: Path, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "plugin_modules": [PLUGINS],
        "lease_seconds": 2.0,
        "heartbeat_seconds": 0.4,
    }
    values.update(overrides)
    return make_settings(data_dir, **values)


def migrated_queue_settings(data_dir: Path, redis_url: str, **overrides: Any) -> Settings:
    """`queue_settings` on a database already migrated to the newest schema."""
    settings = queue_settings(data_dir, redis_url, **overrides)
    upgrade(settings.sqlalchemy_url)
    return settings


def worker_env(settings: Settings, *, log_level: str = "INFO") -> dict[str, str]:
    """The environment for an `isengard worker` or `isengard api` subprocess that uses exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISENGARD_")}
    env.update(
        {
            "ISENGARD_MODE": "fast-test",
            "ISENGARD_DATA_DIR": str(settings.data_path),
            "DATABASE_URL": settings.sqlalchemy_url,
            "REDIS_URL": str(settings.redis_url),
            "ISENGARD_PLUGIN_MODULES": ",".join(settings.plugin_modules),
            "ISENGARD_LEASE_SECONDS": str(settings.lease_seconds),
            "ISENGARD_HEARTBEAT_SECONDS": str(settings.heartbeat_seconds),
            "ISENGARD_MAX_ATTEMPTS": str(settings.max_attempts),
            "ISENGARD_LOG_JSON": "true",
            "ISENGARD_LOG_LEVEL": log_level,
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    # The engines' own settings, when a test points them at a stand-in (ai-toolkit's run.py, a ComfyUI server):
    # set in this process's environment, where the in-process API reads them too.
    env.update({k: v for k, v in os.environ.items() if k.startswith(("ISENGARD_AI_TOOLKIT_", "ISENGARD_COMFYUI_"))})
    env["ISENGARD_MIN_FREE_BYTES"] = str(settings.min_free_bytes)
    return env


def start_worker_process(
    settings: Settings, worker_id: str, *, burst: bool = False, log_path: Path | None = None
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "isengard.cli", "worker", "--id", worker_id]
    if burst:
        cmd.append("--burst")
    stderr: Any = log_path.open("wb") if log_path is not None else subprocess.DEVNULL
    return subprocess.Popen(
        cmd, env=worker_env(settings), cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
    )


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(predicate: Callable[[], Any], timeout: float, message: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s: {message}")


class JobStore:
    """Direct database access for assertions, plus submission through the real service."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: Services = build_services(settings)
        self.sessions: sessionmaker[Session] = self.services.sessions

    def submit(self, plugin: str, payload: dict[str, Any], kind: JobKind = JobKind.TRAINING, name: str = "") -> Job:
        with self.sessions() as session:
            return submit_job(self.services, session, Submission(kind, plugin, payload, {}, name or plugin))

    def job(self, job_id: str) -> Job:
        with self.sessions() as session:
            job = session.get(Job, job_id)
            assert job is not None
            return job

    def close(self) -> None:
        self.services.redis.close()
        self.services.engine.dispose()


@contextmanager
def open_store(settings: Settings) -> Iterator[JobStore]:
    """A JobStore over a freshly migrated database, closed (Redis client, engine) when the block ends."""
    upgrade(settings.sqlalchemy_url)
    store = JobStore(settings)
    try:
        yield store
    finally:
        store.close()


def trace_lines(settings: Settings, job: Job) -> list[str]:
    folder = settings.data_path / "loras" / "unassigned" / job.id
    path = folder / "trace.log"
    return path.read_text().splitlines() if path.exists() else []


@contextmanager
def worker_thread(settings: Settings, worker_id: str = "thread-worker", *, burst: bool = False) -> Iterator[Worker]:
    """A worker in this process (no signal handling), stopped and joined on exit."""
    worker = Worker(settings, worker_id=worker_id, burst=burst)
    thread = threading.Thread(target=worker.run, name=worker_id, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.request_stop()
        thread.join(timeout=30)


@contextmanager
def live_api(settings: Settings) -> Iterator[str]:
    """The real app under uvicorn on a free port (SSE needs a real server); yields its base URL."""
    with serve_in_thread(create_app(settings)) as base:
        yield base


def engine_sessions(settings: Settings) -> sessionmaker[Session]:
    return make_sessionmaker(make_engine(settings.sqlalchemy_url))
