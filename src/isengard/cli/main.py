"""The `isengard` command: up | api | worker | migrate | plan | train | caption | generate.

`up` is the one-command start: database migrations, the embedded Redis when no REDIS_URL is set, the API and the
workers as child processes, each restarted with a backoff when it dies (the API on the same port). Ctrl-C stops
every process it started, by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from isengard.config import Mode, Settings, SettingsError, load_settings
from isengard.logging import configure_logging

log = logging.getLogger("isengard.cli")


def _settings_or_exit(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        print(f"isengard: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _settings_with_redis(**overrides: Any) -> Settings | None:
    """Settings of a process that needs Redis (api, worker); None, after saying why, when REDIS_URL is not set."""
    settings = _settings_or_exit(**overrides)
    if not settings.redis_url:
        print("isengard: REDIS_URL is not set; `isengard up` starts an embedded Redis for you", file=sys.stderr)
        return None
    return settings


def prepare(settings: Settings) -> None:
    """What must be true before anything serves: the data tree, the schema, the fast-test model."""
    from isengard.db.migrate import upgrade
    from isengard.storage import DataTree

    DataTree(settings.data_path).ensure()
    upgrade(settings.sqlalchemy_url)
    if settings.resolved_mode == Mode.FAST_TEST:
        from isengard.models.tiny import ensure_tiny_model

        ensure_tiny_model(settings)


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    prepare(settings)
    print(f"database is up to date: {settings.sqlalchemy_url.split('@')[-1]}")
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from isengard.api.app import create_app
    from isengard.api.server import raise_open_file_limit, uvicorn_options

    overrides: dict[str, Any] = {}
    if getattr(args, "proxy_headers", False):
        overrides["proxy_headers"] = True
    if getattr(args, "forwarded_allow_ips", None):
        overrides["forwarded_allow_ips"] = args.forwarded_allow_ips
    settings = _settings_with_redis(**overrides)
    if settings is None:
        return 2
    raise_open_file_limit()
    uvicorn.run(create_app(settings), **uvicorn_options(settings))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from isengard.worker.main import run_worker

    settings = _settings_with_redis()
    if settings is None:
        return 2
    return run_worker(settings, burst=args.burst, worker_id=args.id)


READY_TIMEOUT_SECONDS = 300.0


def _wait_until_ready(settings: Settings, supervisor: Any, stopping: Callable[[], bool]) -> bool:
    """Poll the API's health until a worker is up; False when Ctrl-C came first."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"http://{host}:{settings.port}/api/health"
    headers = {"Authorization": f"Bearer {settings.api_token}"} if settings.api_token else {}
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not stopping() and time.monotonic() < deadline:
        supervisor.check()
        with contextlib.suppress(httpx.HTTPError, ValueError):
            if httpx.get(url, headers=headers, timeout=2).json().get("workers", {}).get("count", 0) > 0:
                return True
        time.sleep(0.3)
    # Slow to start (a large model loading): say where it will be all the same.
    return not stopping()


def cmd_up(args: argparse.Namespace) -> int:
    from isengard.redis_server import EmbeddedRedis
    from isengard.supervisor import Supervisor

    settings = _settings_or_exit()
    configure_logging(settings.log_level, settings.log_json)
    prepare(settings)
    env = dict(os.environ)
    env["ISENGARD_DATA_DIR"] = str(settings.data_path)
    env["ISENGARD_MODE"] = settings.resolved_mode.value
    redis_server: EmbeddedRedis | None = None
    supervisor: Supervisor | None = None
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if settings.embedded_redis:
            redis_server = EmbeddedRedis(settings.data_path / "redis", port=args.redis_port).start()
            env["REDIS_URL"] = redis_server.url
        python = sys.executable
        workers = {}
        for index in range(settings.workers):
            # A restarted worker keeps its id: it is the same consumer of the queue, seen as one worker in health.
            worker_id = f"{os.uname().nodename}-{index}"
            workers[worker_id] = [python, "-m", "isengard.cli", "worker", "--id", worker_id]
        supervisor = Supervisor([python, "-m", "isengard.cli", "api"], workers, env, redis_server=redis_server)
        supervisor.start()
        # The URL comes last, once the app answers with a worker up: after the start-up logs, not buried in them.
        if _wait_until_ready(settings, supervisor, lambda: stopping):
            print(f"Isengard is running at {settings.public_url}  (Ctrl-C stops it)", flush=True)
        while not stopping:
            supervisor.check()
            time.sleep(0.2)
    finally:
        if supervisor is not None:
            supervisor.stop()
        if redis_server is not None:
            redis_server.stop()
        print("Isengard stopped.", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isengard", description="A self-hosted studio for character LoRAs")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start Redis (embedded), the API and the workers")
    up.add_argument("--redis-port", type=int, default=None, help="port of the embedded Redis (default: a free one)")
    up.set_defaults(func=cmd_up)

    api = sub.add_parser("api", help="run the API server")
    api.add_argument(
        "--proxy-headers",
        action="store_true",
        help="behind a reverse proxy: take the client address from X-Forwarded-For (ISENGARD_PROXY_HEADERS)",
    )
    api.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="addresses of the proxies whose X-Forwarded-For is believed (ISENGARD_FORWARDED_ALLOW_IPS)",
    )
    api.set_defaults(func=cmd_api)

    worker = sub.add_parser("worker", help="run a worker process")
    worker.add_argument("--burst", action="store_true", help="drain the queue, then exit")
    worker.add_argument("--id", default=None, help="worker id (default: host-pid)")
    worker.set_defaults(func=cmd_worker)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    # `plan` answers locally; `train`, `caption` and `generate` drive the API from a terminal. Each module adds its
    # subcommand.
    from isengard.cli import caption, evaluate, generate, plan, train

    plan.register(sub)
    train.register(sub)
    caption.register(sub)
    generate.register(sub)
    evaluate.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "up":
        settings = _settings_or_exit()
        configure_logging(settings.log_level, settings.log_json)
    result: int = args.func(args)
    return result
