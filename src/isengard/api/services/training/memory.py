"""Whether a training run fits the GPUs of the workers that would take it, before it is queued.

Only for plugins whose config has a `memory_profile` (flux-lora), in production mode. The plan is made against the
largest GPU among the live workers that offer the plugin: a profile that does not fit there fits nowhere, and is
refused with the planner's reason. When no such worker reports a GPU nothing is refused: the worker plans when
the job starts.
"""

from __future__ import annotations

import redis
from fastapi import HTTPException
from pydantic import BaseModel

from isengard.api.state import Services
from isengard.config import Mode
from isengard.domain import JobKind
from isengard.models.memory_plan import MemoryPlan, ProfileDoesNotFit, choose_profile, gb, gpu_size
from isengard.models.planning import training_plan, worker_gpu_bytes
from isengard.queue.workers import list_workers


class MemoryFit(BaseModel):
    summary: str
    plan: MemoryPlan | None = None
    refused: str | None = None  # why the requested profile cannot run on any worker's GPU


def _largest_gpu(services: Services, plugin: str) -> int | None:
    try:
        workers = list_workers(services.redis)
    except redis.RedisError:
        return None
    offering = [w for w in workers if plugin in (w.get("plugins") or {}).get(JobKind.TRAINING.value, [])]
    sizes = [size for size in map(worker_gpu_bytes, offering) if size is not None]
    return max(sizes, default=None)


CPU_ONLY = (
    "none needed here: this installation runs in fast-test mode, so the worker trains the small test model on its "
    "CPU; training FLUX.1-dev needs a worker with a CUDA GPU (production mode)"
)


def memory_fit(services: Services, plugin: str, config: dict[str, object]) -> MemoryFit | None:
    requested = config.get("memory_profile")
    # Fast-test mode trains the tiny model on a CPU: there is no GPU memory to plan, but the form says so.
    if services.settings.resolved_mode == Mode.FAST_TEST:
        return MemoryFit(summary=CPU_ONLY)
    if not isinstance(requested, str):
        return None
    gpu_bytes = _largest_gpu(services, plugin)
    if gpu_bytes is None:
        return MemoryFit(summary="no live worker reports a GPU yet: the memory profile is chosen when the run starts")
    plan = training_plan(services.settings, config, gpu_bytes)
    try:
        profile = choose_profile(requested, plan)  # type: ignore[arg-type]  # validated by the plugin's config
    except ProfileDoesNotFit as exc:
        return MemoryFit(summary=str(exc), plan=plan, refused=str(exc) if requested != "auto" else None)
    estimate = plan.estimate(profile).estimated_peak_bytes
    summary = f"fits your {gpu_size(gpu_bytes)} GPU with {profile} (est. {gb(estimate)})"
    return MemoryFit(summary=summary, plan=plan)


def ensure_memory_fits(services: Services, plugin: str, config: dict[str, object]) -> MemoryFit | None:
    """The fit of a run's memory profile; a 422 with the planner's reason when a chosen profile fits no worker."""
    fit = memory_fit(services, plugin, config)
    if fit is not None and fit.refused:
        raise HTTPException(status_code=422, detail=f"config.memory_profile: {fit.refused}")
    return fit
