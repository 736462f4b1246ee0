"""Worker heartbeats: each worker keeps a JSON record (kinds it runs, GPU memory, current job) under a TTL key.

The key outlives the worker by up to a lease (its TTL), so a record alone does not mean the worker is alive: each
record carries the time of its beat (`beat_at`), and a worker that missed a few beats is reported lost at once
instead of a lease later.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from isengard.queue import keys

# A worker is lost once this many heartbeat periods passed without a beat (a beat can be late under load).
MISSED_BEATS_LOST = 3


def write_heartbeat(client: redis.Redis, worker_id: str, info: dict[str, Any], ttl_seconds: float) -> None:
    record = {**info, "beat_at": time.time()}
    client.set(keys.worker_heartbeat(worker_id), json.dumps(record), px=int(ttl_seconds * 1000))


def is_alive(record: dict[str, Any], heartbeat_seconds: float, now: float | None = None) -> bool:
    """Whether the worker beat recently enough; a record without a beat time (older worker) counts as alive."""
    beat_at = record.get("beat_at")
    if not isinstance(beat_at, int | float):
        return True
    return (now if now is not None else time.time()) - beat_at <= heartbeat_seconds * MISSED_BEATS_LOST


def clear_heartbeat(client: redis.Redis, worker_id: str) -> None:
    client.delete(keys.worker_heartbeat(worker_id))


def worker_record(client: redis.Redis, worker_id: str) -> dict[str, Any] | None:
    raw = client.get(keys.worker_heartbeat(worker_id))
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def worker_lost(
    client: redis.Redis, job_id: str, worker_id: str | None, heartbeat_seconds: float, quiet_seconds: float
) -> bool:
    """A running job's worker stopped beating (killed, frozen, its machine gone), or came back (a restarted worker
    keeps its id) without the job: the job waits to be resumed. `quiet_seconds` is how long the job row has not
    changed; a job that just started is given a few beats for its worker to report it."""
    if not worker_id or quiet_seconds <= heartbeat_seconds * MISSED_BEATS_LOST:
        return False
    record = worker_record(client, worker_id)
    if record is None or not is_alive(record, heartbeat_seconds):
        return True
    return record.get("current_job") != job_id


def list_workers(client: redis.Redis, heartbeat_seconds: float | None = None) -> list[dict[str, Any]]:
    """Workers whose heartbeat key has not expired; with `heartbeat_seconds`, only those still beating."""
    workers: list[dict[str, Any]] = []
    for key in client.scan_iter(match=keys.WORKER_HEARTBEAT_PATTERN, count=100):
        raw = client.get(key)
        if raw is None:
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if heartbeat_seconds is None or is_alive(record, heartbeat_seconds):
            workers.append(record)
    return sorted(workers, key=lambda worker: str(worker.get("id", "")))
