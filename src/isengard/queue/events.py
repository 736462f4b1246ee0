"""Job events on Redis: each job has a capped event stream; status changes also go to one global stream.

The stream ids are the SSE ids, so a client that reconnects with `Last-Event-ID` reads exactly the entries after
it. Publishing never fails a job: Redis carries live events only, and the worker persists what must survive
(loss points, logs, samples, status) in the database.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

import redis

from isengard.domain import StatusEvent
from isengard.queue import keys

log = logging.getLogger(__name__)

DATA_FIELD = "data"
GLOBAL_STREAM_MAXLEN = 2000
# A finished job's live stream is kept a day for late viewers, then its page replays from the database.
FINISHED_STREAM_TTL_SECONDS = 24 * 3600


def as_text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def publish(client: redis.Redis, event: Any, *, maxlen: int) -> str | None:
    """XADD an event to its job's stream (and status events to the global stream). Returns the stream id."""
    data = event.model_dump_json()
    try:
        pipe = client.pipeline(transaction=False)
        pipe.xadd(keys.job_events(event.job_id), {DATA_FIELD: data}, maxlen=maxlen, approximate=True)
        if isinstance(event, StatusEvent):
            pipe.xadd(keys.GLOBAL_EVENTS, {DATA_FIELD: data}, maxlen=GLOBAL_STREAM_MAXLEN, approximate=True)
            if event.status.is_final:
                pipe.expire(keys.job_events(event.job_id), FINISHED_STREAM_TTL_SECONDS)
        results = pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not publish a job event", extra={"event_type": event.type, "error": str(exc)})
        return None
    return as_text(results[0])


class EventOutbox:
    """A worker's events, published in order; what Redis could not take waits here and goes out first once it is
    back (on the next event or heartbeat), so a live chart has no hole the history lacks and a job that finished
    during an outage still announces its final status on the global stream.

    Bounded: past `capacity` waiting events the oldest are dropped (a day-long outage must not exhaust memory);
    the database still has them for any page that replays the history.
    """

    def __init__(self, client: redis.Redis, *, maxlen: int, capacity: int = 20_000) -> None:
        self.client = client
        self.maxlen = maxlen
        self._waiting: deque[Any] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def publish(self, event: Any) -> None:
        with self._lock:
            self._waiting.append(event)
            self._drain()

    def flush(self) -> None:
        """Send what is waiting, if Redis takes it now."""
        with self._lock:
            self._drain()

    def _drain(self) -> None:
        while self._waiting:
            if publish(self.client, self._waiting[0], maxlen=self.maxlen) is None:
                return
            self._waiting.popleft()


def is_valid_stream_id(value: str) -> bool:
    head, _, tail = value.partition("-")
    return head.isdigit() and (tail == "" or tail.isdigit())
