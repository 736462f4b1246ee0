"""The work queue on Redis Streams: enqueue, claim (XREADGROUP), reclaim (XAUTOCLAIM), leases, ack, cancel flags.

One stream per job kind, read by one consumer group. An entry carries only the job id: the job itself (payload,
status, attempts) lives in the database, which stays the source of truth. Acked entries are deleted so a stream
holds exactly the work still outstanding, which is what recovery compares the database against.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from isengard.queue import keys
from isengard.queue.events import as_text

log = logging.getLogger(__name__)

ENTRY_FIELD = "job_id"


@dataclass(frozen=True)
class ClaimedEntry:
    kind: str
    entry_id: str
    job_id: str
    reclaimed: bool = False


@dataclass(frozen=True)
class AutoclaimReply:
    next_start: str
    entries: list[tuple[str, dict[str, str]]]
    # Entries that were pending but no longer exist in the stream (trimmed or deleted).
    deleted: list[str]
    # Redis 6.2 answers a deleted entry with a bare nil, without its id; the caller must find those itself.
    deleted_without_id: int = 0


def _fields(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {as_text(k): as_text(v) for k, v in raw.items()}
    items = list(raw)
    return {as_text(items[i]): as_text(items[i + 1]) for i in range(0, len(items) - 1, 2)}


def parse_xautoclaim(reply: Sequence[Any]) -> AutoclaimReply:
    """Parse a raw XAUTOCLAIM reply of either shape.

    Redis 6.2 answers `[next_start, entries]` and reports an entry deleted from the stream as a nil in `entries`
    (claimed all the same, but without its id); Redis 7.x answers `[next_start, entries, deleted_ids]` and leaves
    deleted entries out of `entries` and of the pending list.
    """
    if len(reply) not in (2, 3):
        raise ValueError(f"unexpected XAUTOCLAIM reply with {len(reply)} items")
    entries: list[tuple[str, dict[str, str]]] = []
    deleted: list[str] = [as_text(item) for item in reply[2]] if len(reply) == 3 and reply[2] else []
    without_id = 0
    for item in reply[1] or []:
        if item is None:
            without_id += 1
            continue
        entry_id, raw_fields = item[0], item[1] if len(item) > 1 else None
        if raw_fields is None:
            deleted.append(as_text(entry_id))
            continue
        entries.append((as_text(entry_id), _fields(raw_fields)))
    return AutoclaimReply(next_start=as_text(reply[0]), entries=entries, deleted=deleted, deleted_without_id=without_id)


def ensure_group(client: redis.Redis, kind: str) -> None:
    """Create the stream and its consumer group if missing (after a flush too)."""
    try:
        client.xgroup_create(keys.job_stream(kind), keys.CONSUMER_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def enqueue(client: redis.Redis, kind: str, job_id: str) -> str:
    """Add a work entry for a job; returns the entry id."""
    ensure_group(client, kind)
    entry_id = client.xadd(keys.job_stream(kind), {ENTRY_FIELD: job_id})
    return as_text(entry_id)


def claim_new(client: redis.Redis, kinds: Iterable[str], consumer: str, block_ms: int) -> ClaimedEntry | None:
    """Wait (XREADGROUP BLOCK) for one never-delivered entry on any of the given kinds' streams."""
    streams = {keys.job_stream(kind): ">" for kind in kinds}
    if not streams:
        return None
    reply: Any = client.xreadgroup(keys.CONSUMER_GROUP, consumer, streams, count=1, block=block_ms)  # type: ignore[arg-type]
    for stream, entries in reply or []:
        for entry_id, fields in entries:
            kind = as_text(stream).rsplit(":", 1)[-1]
            job_id = _fields(fields).get(ENTRY_FIELD, "")
            return ClaimedEntry(kind=kind, entry_id=as_text(entry_id), job_id=job_id)
    return None


def autoclaim(client: redis.Redis, kind: str, consumer: str, min_idle_ms: int, count: int = 1) -> AutoclaimReply:
    """Take over entries idle longer than `min_idle_ms` (their worker stopped heartbeating)."""
    # The raw reply is parsed here, not by redis-py's callback, which fails on 6.2's `[id, nil]` entries.
    client.set_response_callback("XAUTOCLAIM", _raw_reply)
    reply = client.execute_command(
        "XAUTOCLAIM", keys.job_stream(kind), keys.CONSUMER_GROUP, consumer, min_idle_ms, "0-0", "COUNT", count
    )
    parsed = parse_xautoclaim(reply)
    deleted = list(parsed.deleted)
    if parsed.deleted_without_id:
        deleted += _vanished_entries(client, kind, consumer)
    if deleted:
        # An entry that no longer exists cannot be worked on; drop it from the pending list.
        client.xack(keys.job_stream(kind), keys.CONSUMER_GROUP, *deleted)
    return parsed


def _vanished_entries(client: redis.Redis, kind: str, consumer: str) -> list[str]:
    """Entries pending on `consumer` that the stream no longer holds."""
    rows = client.xpending_range(keys.job_stream(kind), keys.CONSUMER_GROUP, "-", "+", 100, consumername=consumer)
    vanished = []
    for row in rows:
        entry_id = as_text(row["message_id"])
        if not client.xrange(keys.job_stream(kind), min=entry_id, max=entry_id, count=1):
            vanished.append(entry_id)
    return vanished


def _raw_reply(response: Any, **_options: Any) -> Any:
    return response


def touch(client: redis.Redis, kind: str, consumer: str, entry_id: str) -> None:
    """Make `consumer` the entry's holder with its idle time reset: a heartbeat keeps a long-running job from being
    mistaken for an abandoned one, and an entry taken over by mistake goes back to the worker really running it."""
    client.xclaim(keys.job_stream(kind), keys.CONSUMER_GROUP, consumer, 0, [entry_id], justid=True)


def ack(client: redis.Redis, kind: str, entry_id: str) -> None:
    """Done with an entry: acknowledge and delete it, so the stream holds only outstanding work."""
    pipe = client.pipeline(transaction=True)
    pipe.xack(keys.job_stream(kind), keys.CONSUMER_GROUP, entry_id)
    pipe.xdel(keys.job_stream(kind), entry_id)
    pipe.execute()


def requeue(client: redis.Redis, kind: str, entry_id: str, job_id: str) -> str:
    """Replace a claimed entry by a fresh one at the tail, atomically: another worker can take it at once."""
    ensure_group(client, kind)
    pipe = client.pipeline(transaction=True)
    pipe.xack(keys.job_stream(kind), keys.CONSUMER_GROUP, entry_id)
    pipe.xdel(keys.job_stream(kind), entry_id)
    pipe.xadd(keys.job_stream(kind), {ENTRY_FIELD: job_id})
    return as_text(pipe.execute()[-1])


def stream_job_ids(client: redis.Redis, kind: str) -> dict[str, str]:
    """Job id -> entry id for every entry still in a kind's stream (pending or not yet delivered)."""
    found: dict[str, str] = {}
    start = "-"
    while True:
        batch = client.xrange(keys.job_stream(kind), min=start, count=500)
        if not batch:
            return found
        for entry_id, fields in batch:
            job_id = _fields(fields).get(ENTRY_FIELD)
            if job_id:
                found[job_id] = as_text(entry_id)
        if len(batch) < 500:
            return found
        start = "(" + as_text(batch[-1][0])


def pending_entries(
    client: redis.Redis, kind: str, count: int = 100, *, consumer: str | None = None
) -> list[tuple[str, str, int]]:
    """(entry id, consumer, idle ms) of delivered but unacknowledged entries (of one consumer if given)."""
    try:
        rows = client.xpending_range(keys.job_stream(kind), keys.CONSUMER_GROUP, "-", "+", count, consumername=consumer)
    except redis.ResponseError:  # no such stream or group yet
        return []
    return [(as_text(r["message_id"]), as_text(r["consumer"]), int(r["time_since_delivered"])) for r in rows]


def delivery_count(client: redis.Redis, kind: str, entry_id: str) -> int:
    """How many times a pending entry was delivered (first read plus every takeover); 0 when not pending."""
    rows = client.xpending_range(keys.job_stream(kind), keys.CONSUMER_GROUP, entry_id, entry_id, 1)
    return int(rows[0]["times_delivered"]) if rows else 0


def entry_job_id(client: redis.Redis, kind: str, entry_id: str) -> str | None:
    rows = client.xrange(keys.job_stream(kind), min=entry_id, max=entry_id, count=1)
    if not rows:
        return None
    return _fields(rows[0][1]).get(ENTRY_FIELD)


# --- Leases -------------------------------------------------------------------------------------------------------

# Renew only a lease we still hold: a worker that lost its lease must not extend another worker's.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def acquire_lease(client: redis.Redis, job_id: str, worker_id: str, ttl_seconds: float) -> bool:
    return bool(client.set(keys.job_lease(job_id), worker_id, nx=True, px=int(ttl_seconds * 1000)))


def renew_lease(client: redis.Redis, job_id: str, worker_id: str, ttl_seconds: float) -> bool:
    """Extend our lease (or take it back after Redis lost it); False when another worker holds it."""
    result = client.eval(_RENEW, 1, keys.job_lease(job_id), worker_id, int(ttl_seconds * 1000))  # type: ignore[no-untyped-call]
    return int(result) > 0


def release_lease(client: redis.Redis, job_id: str, worker_id: str) -> None:
    client.eval(_RELEASE, 1, keys.job_lease(job_id), worker_id)  # type: ignore[no-untyped-call]


def lease_holder(client: redis.Redis, job_id: str) -> str | None:
    value = client.get(keys.job_lease(job_id))
    return as_text(value) if value is not None else None


# --- Cancellation flags ---------------------------------------------------------------------------------------------

CANCEL_FLAG_TTL_SECONDS = 7 * 24 * 3600


def request_cancel(client: redis.Redis, job_id: str) -> None:
    client.set(keys.job_cancel(job_id), "1", ex=CANCEL_FLAG_TTL_SECONDS)


def cancel_requested(client: redis.Redis, job_id: str) -> bool:
    return bool(client.exists(keys.job_cancel(job_id)))


def clear_job_keys(client: redis.Redis, job_id: str) -> None:
    """Before a new attempt of a stopped job: its cancel flag goes, and its event stream, set to expire when the job
    ended, is kept again (the page that follows the new attempt reads it)."""
    client.delete(keys.job_cancel(job_id))
    client.persist(keys.job_events(job_id))
