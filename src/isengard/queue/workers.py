"""Worker heartbeats: each worker keeps a JSON record (kinds it runs, GPU memory, current job) under a TTL key."""

from __future__ import annotations

import json
from typing import Any

import redis

from isengard.queue import keys


def write_heartbeat(client: redis.Redis, worker_id: str, info: dict[str, Any], ttl_seconds: float) -> None:
    client.set(keys.worker_heartbeat(worker_id), json.dumps(info), px=int(ttl_seconds * 1000))


def clear_heartbeat(client: redis.Redis, worker_id: str) -> None:
    client.delete(keys.worker_heartbeat(worker_id))


def list_workers(client: redis.Redis) -> list[dict[str, Any]]:
    """Live workers: only those whose heartbeat key has not expired."""
    workers: list[dict[str, Any]] = []
    for key in client.scan_iter(match=keys.WORKER_HEARTBEAT_PATTERN, count=100):
        raw = client.get(key)
        if raw is None:
            continue
        try:
            workers.append(json.loads(raw))
        except ValueError:
            continue
    return sorted(workers, key=lambda worker: str(worker.get("id", "")))
