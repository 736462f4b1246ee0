"""The queue's part of the API lifespan: re-enqueue from the database on start, then keep watching Redis.

Also opens the asyncio Redis client the SSE streams read from, and closes it on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis

from isengard.api.services.jobs.events import async_redis
from isengard.api.state import Services
from isengard.jobs.recovery import QueueRecovery

log = logging.getLogger(__name__)


async def start_queue_recovery(services: Services) -> tuple[asyncio.Event, asyncio.Task[None]]:
    async_redis(services)
    recovery = QueueRecovery(services.settings, services.sessions, services.redis)
    try:
        await asyncio.to_thread(recovery.recover)
    except redis.RedisError as exc:
        # The API still serves (jobs are saved as queued); the background task recovers once Redis answers.
        log.warning("redis unavailable at start; jobs will be enqueued when it is back", extra={"error": str(exc)})
    stop = asyncio.Event()
    task = asyncio.create_task(recovery.run(stop), name="queue-recovery")
    return stop, task


async def stop_queue_recovery(services: Services, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    try:
        await asyncio.wait_for(task, timeout=5)
    except TimeoutError:
        task.cancel()
    hub, services.event_fanout = services.event_fanout, None
    if hub is not None:
        await hub.close()
    client, services.async_redis = services.async_redis, None
    if client is not None:
        with contextlib.suppress(Exception):
            await client.aclose()
