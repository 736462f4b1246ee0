"""Typed dependencies for the routes: `def route(db: DbSession, services: ServicesDep)`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import redis
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from isengard.api.state import Services
from isengard.config import Settings
from isengard.db.session import session_scope
from isengard.storage import DataTree


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


def get_data(services: ServicesDep) -> DataTree:
    return services.data


def get_redis(services: ServicesDep) -> redis.Redis:
    return services.redis


def get_db(services: ServicesDep) -> Iterator[Session]:
    """A session per request: committed when the route returns normally, rolled back on an error.

    Used with `scope="function"` (below): the commit runs when the route function returns, before the response
    is sent, so a 2xx means the write is stored and a failed commit is answered 500, never 2xx.
    """
    with session_scope(services.sessions) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DataDep = Annotated[DataTree, Depends(get_data)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
DbSession = Annotated[Session, Depends(get_db, scope="function")]
