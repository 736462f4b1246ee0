"""Whether a submitted job's plugin can run somewhere: on this machine, or on a live worker that advertises it.

The API and the workers need not share a machine (an API on a small CPU box, workers on GPU machines): the
API's own capability check alone would refuse every production run there. Each worker's heartbeat lists the
plugins it can run, so a job is accepted when any live worker can take it.
"""

from __future__ import annotations

import logging

import redis
from fastapi import HTTPException

from isengard.api.state import Services
from isengard.domain import JOB_KIND_OF_PLUGIN, PluginKind
from isengard.plugins.api import Capability
from isengard.queue.workers import list_workers

log = logging.getLogger(__name__)


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
