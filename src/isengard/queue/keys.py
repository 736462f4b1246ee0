"""Every Redis key name Isengard uses, in one place."""

from __future__ import annotations

PREFIX = "isengard"

CONSUMER_GROUP = "workers"


def job_stream(kind: str) -> str:
    """The work stream of one job kind; workers read only the kinds they can run."""
    return f"{PREFIX}:jobs:{kind}"


def job_events(job_id: str) -> str:
    """The capped event stream of one job (SSE ids are this stream's ids)."""
    return f"{PREFIX}:events:{job_id}"


GLOBAL_EVENTS = f"{PREFIX}:events:all"

# Written by the API once the queue holds everything the database says is queued. Its absence means Redis came
# back empty (restart without persistence, FLUSHALL): the API then re-enqueues from the database.
SENTINEL = f"{PREFIX}:sentinel"


def job_lease(job_id: str) -> str:
    """Held by the worker running the job, with a TTL renewed by heartbeats."""
    return f"{PREFIX}:lease:{job_id}"


def job_cancel(job_id: str) -> str:
    return f"{PREFIX}:cancel:{job_id}"


def worker_heartbeat(worker_id: str) -> str:
    return f"{PREFIX}:worker:{worker_id}"


WORKER_HEARTBEAT_PATTERN = f"{PREFIX}:worker:*"


def rate_limit(bucket: str, client: str) -> str:
    return f"{PREFIX}:ratelimit:{bucket}:{client}"
