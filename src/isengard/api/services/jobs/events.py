"""Server-sent event streams: one job's events, and every job's status changes.

SSE ids are the Redis stream ids, so a reconnect with `Last-Event-ID` resumes exactly after the last event seen.
When a job's stream is gone (finished long ago, or Redis lost its data) the events are replayed from the database
with ids `db-<row id>`; a finished job's stream then closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis
import redis.asyncio as aioredis
from sse_starlette import ServerSentEvent

from isengard.api.state import Services
from isengard.db.models import Job
from isengard.domain import JobStatus, StatusEvent
from isengard.jobs.history import load_events
from isengard.queue import events as queue_events
from isengard.queue import keys
from isengard.queue.fanout import EventFanout, decode, reader_client

log = logging.getLogger(__name__)

IDLE_CHECK_SECONDS = 30.0
DB_ID_PREFIX = "db-"
MAX_STREAM_SEQ = 18446744073709551615


def async_redis(services: Services) -> aioredis.Redis:
    if services.async_redis is None:
        assert services.settings.redis_url
        services.async_redis = reader_client(services.settings.redis_url)
    return services.async_redis


def fanout(services: Services) -> EventFanout:
    if services.event_fanout is None:
        services.event_fanout = EventFanout(async_redis(services))
    return services.event_fanout


def _sse(entry_id: str, event: Any) -> ServerSentEvent:
    return ServerSentEvent(data=event.model_dump_json(), id=entry_id, event=event.type)


def _is_end(event: Any) -> bool:
    return isinstance(event, StatusEvent) and event.status.is_final


def _job_status(services: Services, job_id: str) -> JobStatus | None:
    with services.sessions() as session:
        job = session.get(Job, job_id)
        return JobStatus(job.status) if job is not None else None


def _db_events(services: Services, job_id: str, after_row: int) -> list[tuple[int, Any]]:
    with services.sessions() as session:
        result: list[tuple[int, Any]] = load_events(session, job_id, after_id=after_row)
        return result


def _stream_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def event_ms(event: Any) -> int:
    """An event's time on the clock stream ids use (milliseconds)."""
    return int(event.at.timestamp() * 1000)


def stream_position(ms: int) -> str:
    """The stream id just after everything that happened up to `ms`: a `since` that skips what a history held."""
    return f"{ms}-{MAX_STREAM_SEQ}"


async def _replay(
    services: Services, job_id: str, *, after_row: int = 0, after_ms: int | None = None
) -> AsyncIterator[tuple[ServerSentEvent, int, bool]]:
    """The job's events from the database after a row id or a time: (event, its time in ms, whether it ends)."""
    replayed = await asyncio.to_thread(_db_events, services, job_id, after_row)
    for row_id, event in replayed:
        at_ms = event_ms(event)
        if after_ms is not None and at_ms <= after_ms:
            continue
        yield _sse(f"{DB_ID_PREFIX}{row_id}", event), at_ms, _is_end(event)


async def _stream_ends(client: aioredis.Redis, stream: str) -> bool:
    """Whether the stream's newest entry is the job's final status."""
    newest: Any = await client.xrevrange(stream, count=1)
    return bool(newest) and (entry := decode(newest[0][0], newest[0][1])) is not None and entry.final


async def job_events(services: Services, job_id: str, last_event_id: str | None) -> AsyncIterator[ServerSentEvent]:
    client = async_redis(services)
    stream = keys.job_events(job_id)
    last = (last_event_id or "").strip()
    status = await asyncio.to_thread(_job_status, services, job_id)
    try:
        live = await client.exists(stream) and not last.startswith(DB_ID_PREFIX)
        # A job that finished while Redis was away has a stream without its final status: the database has it.
        if live and (status is None or status.is_final) and not await _stream_ends(client, stream):
            live = False
    except redis.RedisError:
        live = False
    if not live:
        # Replay from the database: after a db row id, or after the time of a stream id the client already has.
        row_part = last[len(DB_ID_PREFIX) :] if last.startswith(DB_ID_PREFIX) else ""
        after_ms = _stream_ms(last) if queue_events.is_valid_stream_id(last) else None
        last_ms = after_ms or 0
        async for event, event_ms, ends in _replay(
            services, job_id, after_row=int(row_part) if row_part.isdigit() else 0, after_ms=after_ms
        ):
            last_ms = max(last_ms, event_ms)
            yield event
            if ends:
                return
        status = await asyncio.to_thread(_job_status, services, job_id)
        if status is None or status.is_final:
            return
        # Still running: follow the live stream from after the newest event already replayed.
        last = stream_position(last_ms) if last_ms else "0-0"
    elif not queue_events.is_valid_stream_id(last):
        last = "0-0"
    async for item in _follow(services, stream, job_id, last):
        yield item


async def _follow(services: Services, stream: str, job_id: str, last: str) -> AsyncIterator[ServerSentEvent]:
    delivered = last
    async for entry in fanout(services).subscribe(stream, last, idle_seconds=IDLE_CHECK_SECONDS):
        if entry is None:
            # A job that ended while its final event could not reach Redis would otherwise be followed forever:
            # what it did after the last entry delivered here comes from the database, up to its final status.
            status = await asyncio.to_thread(_job_status, services, job_id)
            if status is None:
                return
            if status.is_final:
                async for event, _ms, ends in _replay(services, job_id, after_ms=_stream_ms(delivered)):
                    yield event
                    if ends:
                        return
                return
            continue
        delivered = entry.id
        yield ServerSentEvent(data=entry.data, id=entry.id, event=entry.type)
        if entry.final:
            return


async def all_status_events(services: Services, last_event_id: str | None) -> AsyncIterator[ServerSentEvent]:
    """Every job's status changes, for list pages; from `Last-Event-ID` on, else from now."""
    client = async_redis(services)
    last = (last_event_id or "").strip()
    if not queue_events.is_valid_stream_id(last):
        last = "0-0"
        try:
            newest = await client.xrevrange(keys.GLOBAL_EVENTS, count=1)
            if newest:
                last = queue_events.as_text(newest[0][0])
        except redis.RedisError:
            pass
    async for entry in fanout(services).subscribe(keys.GLOBAL_EVENTS, last, idle_seconds=IDLE_CHECK_SECONDS):
        if entry is not None:
            yield ServerSentEvent(data=entry.data, id=entry.id, event=entry.type)
