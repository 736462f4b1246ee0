"""Whether a submitted job's plugin can run somewhere: on this machine, or on a live worker that advertises it.

The API and the workers need not share a machine (an API on a small CPU box, workers on GPU machines): the
API's own capability check alone would refuse every production run there. Each worker's heartbeat lists the
plugins it can run, so a job is accepted when any live worker can take it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import redis
from fastapi import HTTPException

from isengard.api.state import Services
from isengard.domain import JOB_KIND_OF_PLUGIN, PluginKind
from isengard.plugins.api import Capability
from isengard.plugins.registry import UnknownPluginError
from isengard.queue.workers import list_workers

log = logging.getLogger(__name__)

PluginT = TypeVar("PluginT")


def workers_offering(services: Services, kind: PluginKind, name: str) -> list[str]:
    """Ids of the live workers whose heartbeat says they can run this plugin."""
    job_kind = JOB_KIND_OF_PLUGIN[kind]
    try:
        workers = list_workers(services.redis)
    except redis.RedisError:
        return []
    return [str(w.get("id")) for w in workers if name in (w.get("plugins") or {}).get(job_kind, [])]


def ensure_runnable(services: Services, kind: PluginKind, name: str) -> Capability:
    """The plugin's capability here, or that of a live worker; a 422 naming the reason when neither can run it."""
    local = services.plugins.capabilities(kind, name)
    if local.available:
        return local
    offering = workers_offering(services, kind, name)
    if offering:
        return Capability(available=True, reason=None, details={**local.details, "workers": offering})
    raise HTTPException(
        status_code=422,
        detail=f"{kind.value} plugin '{name}' cannot run here ({local.reason}) and no live worker offers it",
    )


@dataclass(frozen=True)
class ListedPlugin(Generic[PluginT]):
    """One registered plugin of a kind, as the plugin listings show it: `cls` is None when it failed to load."""

    name: str
    description: str
    capability: Capability
    cls: type[PluginT] | None

    def described(self) -> dict[str, Any]:
        """The fields every plugin listing shows: name, description, capability."""
        return {"name": self.name, "description": self.description, "capability": self.capability}

    def schema(self, of: Callable[[type[PluginT]], dict[str, Any]]) -> dict[str, Any]:
        """A JSON schema the plugin's class declares (its config or request); empty when the class did not load."""
        return of(self.cls) if self.cls is not None else {}


def listed_plugins(services: Services, kind: PluginKind, base: type[PluginT]) -> list[ListedPlugin[PluginT]]:
    """Every registered plugin of `kind` with its description, capability here and class (when it is a `base`)."""
    listed: list[ListedPlugin[PluginT]] = []
    for name in services.plugins.names(kind):
        record = services.plugins.records[(kind, name)]
        cls: type[PluginT] | None = record.cls if record.cls is not None and issubclass(record.cls, base) else None
        listed.append(ListedPlugin(name, record.description, services.plugins.capabilities(kind, name), cls))
    return listed


def plugin_of_kind(services: Services, kind: PluginKind, name: str, base: type[PluginT]) -> PluginT:
    """The loaded plugin `name` of `kind`; a 422 when there is none of that name or it is not a `base`."""
    try:
        plugin = services.plugins.get(kind, name)
    except UnknownPluginError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    if not isinstance(plugin, base):
        raise HTTPException(status_code=422, detail=f"'{name}' is not a {kind.value} plugin")
    return plugin
