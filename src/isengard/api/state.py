"""The services the API builds once in its lifespan and keeps on `app.state.services`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from isengard.config import Settings
from isengard.plugins.registry import PluginRegistry
from isengard.storage import DataTree


@dataclass
class Services:
    settings: Settings
    data: DataTree
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    plugins: PluginRegistry
    # Room for services other modules attach in the lifespan (queue, rate limiter, ...), by name.
    extras: dict[str, Any] = field(default_factory=dict)
