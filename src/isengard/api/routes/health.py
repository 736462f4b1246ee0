"""Liveness with the state of the database, Redis and workers; what this installation can do."""

from __future__ import annotations

import time
from typing import Any

import redis
from fastapi import APIRouter
from sqlalchemy import text

from isengard import __version__
from isengard.api.deps import ServicesDep
from isengard.api.schemas.bases import BaseOut
from isengard.api.schemas.health import (
    Capabilities,
    ComponentHealth,
    Health,
    PluginCapability,
    TorchInfo,
    WorkerInfo,
    WorkersHealth,
)
from isengard.api.services.bases import list_bases
from isengard.api.services.training.runs import default_config, training_plugin
from isengard.api.state import Services
from isengard.domain import PluginKind
from isengard.models.locate import model_status
from isengard.models.planning import PLANNED_TRAINER, WorkerMemoryPlan, worker_plans
from isengard.queue.workers import is_alive, list_workers

router = APIRouter(tags=["health"])


def _workers_health(services: Services) -> WorkersHealth:
    """Each worker with the age of its last beat; one that stopped beating is listed as lost, not counted up."""
    now = time.time()
    beat = services.settings.heartbeat_seconds
    found = []
    for record in list_workers(services.redis):
        beat_at = record.get("beat_at")
        found.append(
            WorkerInfo.model_validate(
                {
                    **record,
                    "alive": is_alive(record, beat, now),
                    "last_beat_seconds": round(now - beat_at, 1) if isinstance(beat_at, int | float) else None,
                }
            )
        )
    alive = [w for w in found if w.alive]
    lost = [w.id for w in found if not w.alive]
    detail = None if alive else "no worker is running"
    if lost:
        detail = f"{', '.join(lost)} stopped sending heartbeats" + ("" if alive else "; no worker is running")
    return WorkersHealth(status="up" if alive else "down", detail=detail, count=len(alive), workers=found)


def _timed(check: Any) -> ComponentHealth:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        return ComponentHealth(status="down", detail=f"{type(exc).__name__}: {exc}"[:300])
    return ComponentHealth(status="up", latency_ms=round((time.perf_counter() - started) * 1000, 2))


@router.get("/health", response_model=Health)
def health(services: ServicesDep) -> Health:
    def check_db() -> None:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    database = _timed(check_db)
    redis_health = _timed(services.redis.ping)
    workers = WorkersHealth(status="down", detail="redis is down")
    if redis_health.status == "up":
        try:
            workers = _workers_health(services)
        except Exception as exc:
            workers = WorkersHealth(status="down", detail=str(exc)[:300])
    healthy = all(part.status == "up" for part in (database, redis_health, workers))
    return Health(
        status="ok" if healthy else "degraded",
        version=__version__,
        mode=services.settings.resolved_mode.value,
        database=database,
        redis=redis_health,
        workers=workers,
    )


def torch_info() -> TorchInfo:
    try:
        import torch
    except Exception:
        return TorchInfo(version=None, cuda_available=False)
    gpus: list[dict[str, Any]] = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            gpus.append({"index": index, "name": props.name, "memory_mb": props.total_memory // (1024 * 1024)})
    return TorchInfo(
        version=torch.__version__,
        cuda_available=torch.cuda.is_available(),
        cuda_version=torch.version.cuda,
        gpus=gpus,
    )


@router.get("/bases", response_model=list[BaseOut])
def bases(services: ServicesDep) -> list[BaseOut]:
    """The bases of the registry, each available here or with what is missing of it: the part of the capabilities
    the training form needs, without asking torch about GPUs (fast on a cold API)."""
    return list_bases(services.settings, services.redis, _planned_defaults(services))


@router.get("/capabilities", response_model=Capabilities)
def capabilities(services: ServicesDep) -> Capabilities:
    plugins: dict[str, list[PluginCapability]] = {}
    for kind in PluginKind:
        entries = []
        for name in services.plugins.names(kind):
            record = services.plugins.records[(kind, name)]
            entries.append(
                PluginCapability(
                    name=name,
                    kind=kind,
                    description=record.description,
                    capability=services.plugins.capabilities(kind, name),
                )
            )
        plugins[kind.value] = entries
    return Capabilities(
        mode=services.settings.resolved_mode.value,
        bases=list_bases(services.settings, services.redis, _planned_defaults(services)),
        version=__version__,
        plugins=plugins,
        torch=torch_info(),
        model=model_status(services.settings),
        memory=_memory_plans(services),
    )


def _planned_defaults(services: Services) -> dict[str, Any]:
    """A default run of the planned trainer (empty when that trainer is not installed)."""
    record = services.plugins.records.get((PluginKind.TRAINING, PLANNED_TRAINER))
    if record is None or record.cls is None:
        return {}
    return default_config(training_plugin(services, PLANNED_TRAINER))


def _memory_plans(services: ServicesDep) -> list[WorkerMemoryPlan]:
    """Each live worker's plan for a default run of the planned trainer (none when that trainer is not installed)."""
    try:
        workers = list_workers(services.redis)
    except redis.RedisError:
        return []
    record = services.plugins.records.get((PluginKind.TRAINING, PLANNED_TRAINER))
    if record is None or record.cls is None:
        return []
    defaults = default_config(training_plugin(services, PLANNED_TRAINER))
    return worker_plans(services.settings, workers, defaults)
