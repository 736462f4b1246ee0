"""The services the API builds once in its lifespan and keeps on `app.state.services`."""

from __future__ import annotations

from dataclasses import dataclass

import redis
import redis.asyncio as aioredis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from isengard.config import Settings
from isengard.plugins.registry import PluginRegistry
from isengard.queue.fanout import EventFanout
from isengard.storage import DataTree


@dataclass
class Services:
    settings: Settings
    data: DataTree
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    plugins: PluginRegistry
    # Opened on first use by the SSE streams (api/services/jobs/events.py), closed in the lifespan's shutdown.
    async_redis: aioredis.Redis | None = None
    event_fanout: EventFanout | None = None
