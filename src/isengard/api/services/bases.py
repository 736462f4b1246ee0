"""The bases of the registry as this installation has them: which are installed, what is missing of the others,
how a default run fits each worker's GPU; and the checks that refuse a base that is not there or a mix of bases."""

from __future__ import annotations

from typing import Any

import redis
from fastapi import HTTPException

from isengard.api.schemas.bases import BaseDefaultsOut, BaseMemoryFit, BaseOut
from isengard.config import Mode, Settings
from isengard.models.bases import BASES, DEFAULT_BASE, BaseDefaults, BaseSpec, UnknownBase, get_base
from isengard.models.locate import distilled_missing_reason, distilled_model_dir, model_status
from isengard.models.planning import worker_plans
from isengard.queue.workers import list_workers

UNKNOWN_BASE = "unknown"


def _defaults(defaults: BaseDefaults | None) -> BaseDefaultsOut | None:
    if defaults is None:
        return None
    return BaseDefaultsOut(
        resolution=defaults.resolution, sample_steps=defaults.sample_steps, guidance=defaults.guidance
    )


def _memory(settings: Settings, workers: list[dict[str, Any]], spec: BaseSpec, run: dict[str, Any]) -> list[Any]:
    if not run:
        return []
    values = {**run, "base": spec.name, "target_modules": list(spec.family.lora_targets)}
    return [
        BaseMemoryFit(
            worker_id=plan.worker_id,
            gpu_total_bytes=plan.gpu_total_bytes,
            chosen=plan.plan.chosen,
            reason=plan.plan.reason,
        )
        for plan in worker_plans(settings, workers, values)
    ]


def list_bases(settings: Settings, client: redis.Redis, default_run: dict[str, Any]) -> list[BaseOut]:
    """Every registered base with its availability here; `default_run`: a default training config to price per
    worker (empty: no memory fits)."""
    try:
        workers = list_workers(client)
    except redis.RedisError:
        workers = []
    found = []
    for spec in BASES.values():
        status = model_status(settings, spec.name)
        # fast-test builds a family's tiny model on first use: every base is there.
        available = status.present or settings.resolved_mode == Mode.FAST_TEST
        defaults = _defaults(spec.defaults)
        assert defaults is not None
        found.append(
            BaseOut(
                name=spec.name,
                label=spec.label,
                family=spec.family.name,
                default=spec.name == DEFAULT_BASE,
                description=spec.description,
                licence=spec.licence,
                licence_url=spec.licence_url,
                commercial_use=spec.commercial_use,
                gated=spec.gated,
                repo_id=spec.repo_id,
                distilled_repo_id=spec.distilled_repo_id,
                available=available,
                path=status.path,
                reason=None if available else status.reason,
                missing=[] if available else status.missing,
                download=status.download,
                defaults=defaults,
                distilled_defaults=_defaults(spec.distilled_defaults),
                memory=_memory(settings, workers, spec, default_run),
            )
        )
    return found


def ensure_base_installed(settings: Settings, base: str, *, what: str = "this run") -> BaseSpec:
    """The base's spec, or a 422 saying it is unknown or exactly what of it is missing on this machine."""
    try:
        spec = get_base(base)
    except UnknownBase as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    if settings.resolved_mode == Mode.FAST_TEST:
        return spec
    status = model_status(settings, spec.name)
    if not status.present:
        raise HTTPException(status_code=422, detail=f"{what} needs the base {spec.name}: {status.reason}")
    return spec


def ensure_distilled_installed(settings: Settings, spec: BaseSpec, *, what: str = "this generation") -> None:
    """A 422 naming what is missing, and where to put it, when `spec`'s distilled checkpoint is not complete on this
    machine (fast-test builds its tiny one in the worker; a base without one is the request model's to refuse)."""
    if settings.resolved_mode == Mode.FAST_TEST or spec.distilled_repo_id is None:
        return
    if distilled_model_dir(settings, spec.name) is None:
        reason = distilled_missing_reason(settings, spec.name)
        raise HTTPException(status_code=422, detail=f"{what} needs the distilled checkpoint of {spec.name}: {reason}")


def generation_base(loras: list[tuple[str, str]], requested: str | None) -> str:
    """The base a generation runs on: that of its LoRAs (`(name, base)` pairs), which must agree with each other
    and with `requested`; `requested` or the default base without LoRAs. A mix or an unknown base is a 422."""
    for name, base in loras:
        if base == UNKNOWN_BASE or base not in BASES:
            raise HTTPException(
                status_code=422,
                detail=f"LoRA '{name}' is of an unknown base: its file matches no base Isengard knows "
                f"({', '.join(BASES)}), so it cannot be applied to any of them",
            )
    wanted = requested or (loras[0][1] if loras else DEFAULT_BASE)
    for name, base in loras:
        if base != wanted:
            raise HTTPException(
                status_code=422,
                detail=f"LoRA '{name}' was trained on {base} and cannot be used with {wanted}: "
                "use LoRAs of one base, on that base",
            )
    return wanted
