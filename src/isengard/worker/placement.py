"""Which worker runs a job whose plugin not every worker can run (a GPU plugin on a CPU-only machine, say).

Workers read only the streams of job kinds they can run, but a kind has several plugins: a worker may claim a job
whose plugin it cannot run. It then leaves the entry pending (unacknowledged, lease released) so that another
worker takes it over once it has been idle for a lease period. Each worker advertises the plugins it can run in
its heartbeat; when no live worker can run the plugin and the job has waited at least a lease period, the job
fails with the plugin's own reason instead of going round for ever.
"""

from __future__ import annotations

import redis

from isengard.domain import PLUGIN_KIND_OF_JOB, JobKind
from isengard.plugins.registry import PluginRegistry
from isengard.queue.workers import list_workers


def runnable_plugins(registry: PluginRegistry) -> dict[str, list[str]]:
    """Job kind -> names of the plugins that can run on this machine."""
    found: dict[str, list[str]] = {}
    for job_kind in JobKind:
        plugin_kind = PLUGIN_KIND_OF_JOB[job_kind.value]
        names = [name for name in registry.names(plugin_kind) if registry.capabilities(plugin_kind, name).available]
        if names:
            found[job_kind.value] = names
    return found


def unavailable_reason(registry: PluginRegistry, job_kind: str, plugin: str) -> str | None:
    """None when this worker can run the plugin; otherwise why not, in the plugin's own words."""
    plugin_kind = PLUGIN_KIND_OF_JOB.get(job_kind)
    if plugin_kind is None:
        return None  # an unknown job kind fails when it runs, with its own message
    if plugin not in registry.names(plugin_kind):
        known = ", ".join(registry.names(plugin_kind)) or "none"
        return f"no {plugin_kind} plugin named '{plugin}' is installed (installed: {known})"
    capability = registry.capabilities(plugin_kind, plugin)
    return None if capability.available else (capability.reason or "not available")


def workers_able_to_run(client: redis.Redis, job_kind: str, plugin: str, *, other_than: str) -> list[str]:
    """Ids of the other live workers whose heartbeat lists the plugin as runnable."""
    able = []
    for worker in list_workers(client):
        plugins = worker.get("plugins") or {}
        if worker.get("id") != other_than and plugin in plugins.get(job_kind, []):
            able.append(str(worker.get("id")))
    return able
