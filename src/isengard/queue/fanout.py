"""One Redis reader per event stream, shared by every SSE client of that stream in this process.

A hundred people watching one training run cost one XREAD BLOCK and one JSON parse per event, not a hundred.
A subscriber that joins (or comes back with `Last-Event-ID`) first registers for live entries, then reads what it
missed with XRANGE, then drains the live queue skipping ids it already has: no gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aioredis

from isengard.domain import JobStatus
from isengard.queue.events import DATA_FIELD, as_text

log = logging.getLogger(__name__)

READ_BLOCK_MS = 5000
READ_COUNT = 500
# The client's socket timeout must outlast the blocking read (redis-py's default of 5 s does not): a quiet stream
# is not a failure.
SOCKET_TIMEOUT_SECONDS = READ_BLOCK_MS / 1000 + 10


def reader_client(url: str) -> aioredis.Redis:
    """An asyncio Redis client fit for `EventFanout`'s blocking reads."""
    return aioredis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_SECONDS, health_check_interval=15)


FINAL_STATUSES = {status.value for status in JobStatus if status.is_final}


@dataclass(frozen=True)
class StreamEntry:
    id: str
    type: str
    data: str  # the event's JSON, passed through as stored
    final: bool  # a status event that ends the job

    @property
    def key(self) -> tuple[int, int]:
        return stream_key(self.id)


class EndOfFeed:
    """Put on subscriber queues when the reader stops for good (the hub is closing)."""


def stream_key(entry_id: str) -> tuple[int, int]:
    head, _, tail = entry_id.partition("-")
    return int(head), int(tail or 0)


def decode(entry_id: Any, fields: Any) -> StreamEntry | None:
    raw = fields.get(DATA_FIELD.encode(), fields.get(DATA_FIELD)) if isinstance(fields, dict) else None
    if raw is None:
        return None
    data = as_text(raw)
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    kind = str(parsed.get("type", "message"))
    final = kind == "status" and parsed.get("status") in FINAL_STATUSES
    return StreamEntry(id=as_text(entry_id), type=kind, data=data, final=final)


@dataclass
class _Feed:
    stream: str
    subscribers: set[asyncio.Queue[StreamEntry | EndOfFeed]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class EventFanout:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._feeds: dict[str, _Feed] = {}

    async def _reader(self, feed: _Feed, start: str) -> None:
        last = start
        while feed.subscribers:
            try:
                reply: Any = await self.client.xread({feed.stream: last}, count=READ_COUNT, block=READ_BLOCK_MS)
            except redis.RedisError as exc:
                log.warning("event stream read failed; retrying", extra={"stream": feed.stream, "error": str(exc)})
                await asyncio.sleep(1.0)
                continue
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    last = as_text(entry_id)
                    entry = decode(entry_id, fields)
                    if entry is None:
                        continue
                    for queue in list(feed.subscribers):
                        queue.put_nowait(entry)

    async def _attach(self, stream: str) -> asyncio.Queue[StreamEntry | EndOfFeed]:
        feed = self._feeds.get(stream)
        if feed is None:
            feed = self._feeds[stream] = _Feed(stream)
        queue: asyncio.Queue[StreamEntry | EndOfFeed] = asyncio.Queue()
        feed.subscribers.add(queue)
        if feed.task is None or feed.task.done():
            # Start from the newest entry now: everything older reaches subscribers through their catch-up read.
            newest: Any = await self.client.xrevrange(stream, count=1)
            start = as_text(newest[0][0]) if newest else "0-0"
            feed.task = asyncio.create_task(self._reader(feed, start), name=f"fanout {stream}")
        return queue

    def _detach(self, stream: str, queue: asyncio.Queue[StreamEntry | EndOfFeed]) -> None:
        feed = self._feeds.get(stream)
        if feed is None:
            return
        feed.subscribers.discard(queue)
        if not feed.subscribers:
            if feed.task is not None:
                feed.task.cancel()
            del self._feeds[stream]

    async def subscribe(self, stream: str, after: str, *, idle_seconds: float) -> AsyncIterator[StreamEntry | None]:
        """Entries after `after`, in order, without gaps; yields None after `idle_seconds` without any."""
        queue = await self._attach(stream)
        try:
            last = stream_key(after)
            cursor = f"({after}" if after != "0-0" else "-"
            while True:  # catch up on what is already in the stream
                batch: Any = await self.client.xrange(stream, min=cursor, max="+", count=READ_COUNT)
                for entry_id, fields in batch:
                    entry = decode(entry_id, fields)
                    cursor = f"({as_text(entry_id)}"
                    if entry is None:
                        continue
                    last = entry.key
                    yield entry
                if len(batch) < READ_COUNT:
                    break
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=idle_seconds)
                except TimeoutError:
                    yield None
                    continue
                if isinstance(item, EndOfFeed):
                    return
                if item.key <= last:
                    continue  # already delivered by the catch-up read
                last = item.key
                yield item
        finally:
            self._detach(stream, queue)

    async def close(self) -> None:
        for feed in list(self._feeds.values()):
            for queue in feed.subscribers:
                queue.put_nowait(EndOfFeed())
            if feed.task is not None:
                feed.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feed.task
        self._feeds.clear()
