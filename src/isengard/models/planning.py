"""Memory plans for this installation: its base model's config, a run's settings, and the GPUs the workers report.

The API plans against each worker's total GPU memory (a busy worker's free memory says nothing about the next job);
the worker plans again against its free memory when the job starts, where the plan is final.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from isengard.config import Mode, Settings
from isengard.models.bases import get_base
from isengard.models.locate import base_model_dir
from isengard.models.memory_plan import MemoryPlan, plan_generation, plan_training

# Generation is planned for the largest image usually asked for; smaller ones need less.
GENERATION_RESOLUTION = 1024
# The trainer whose runs the planner prices (its config's resolutions, batch size, rank, checkpointing, targets).
PLANNED_TRAINER = "flux-lora"


class WorkerMemoryPlan(BaseModel):
    worker_id: str
    gpu_total_bytes: int | None
    gpu_free_bytes: int | None
    plan: MemoryPlan  # a default flux-lora training run
    generation: MemoryPlan  # generating a 1024 px image


@lru_cache(maxsize=8)
def _read_config(path: Path, mtime: float) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def base_transformer_config(settings: Settings, base: str | None = None) -> dict[str, Any]:
    """The transformer config of `base` (the default base when None) on this machine; its published one when it is
    not here, and in fast-test mode (whose tiny model never runs on a GPU: plans are about the real model)."""
    spec = get_base(base)
    folder = base_model_dir(settings, spec.name) if settings.resolved_mode == Mode.PRODUCTION else None
    if folder is not None:
        path = folder / "transformer" / "config.json"
        if path.is_file():
            return _read_config(path, path.stat().st_mtime)
    return dict(spec.transformer_config)


def training_plan(settings: Settings, values: dict[str, Any], gpu_bytes: int | None) -> MemoryPlan:
    """The plan for a flux-lora config (all its values, as the plugin resolved them) on a GPU of `gpu_bytes`: priced
    at its largest bucket, on the config's base."""
    base = values.get("base")
    return plan_training(
        transformer_config=base_transformer_config(settings, base),
        base=base,
        resolution=max(int(side) for side in values["resolutions"]),
        batch_size=int(values["batch_size"]),
        rank=int(values["rank"]),
        gradient_checkpointing=bool(values["gradient_checkpointing"]),
        gpu_bytes=gpu_bytes,
        target_modules=list(values["target_modules"]),
    )


def worker_gpu_bytes(worker: dict[str, Any]) -> int | None:
    total = worker.get("gpu_total_bytes")
    if isinstance(total, int) and total > 0:
        return total
    return None


def worker_plans(
    settings: Settings, workers: list[dict[str, Any]], training_config: dict[str, Any]
) -> list[WorkerMemoryPlan]:
    """Per live worker, the plan of a training run with `training_config` (all its values) and of generation; a
    worker without a GPU gets plans whose reason says so."""
    plans = []
    for worker in workers:
        free = worker.get("gpu_free_bytes")
        plans.append(
            WorkerMemoryPlan(
                worker_id=str(worker.get("id", "")),
                gpu_total_bytes=worker_gpu_bytes(worker),
                gpu_free_bytes=free if isinstance(free, int) else None,
                plan=training_plan(settings, training_config, worker_gpu_bytes(worker)),
                generation=plan_generation(
                    transformer_config=base_transformer_config(settings, training_config.get("base")),
                    base=training_config.get("base"),
                    resolution=GENERATION_RESOLUTION,
                    gpu_bytes=worker_gpu_bytes(worker),
                ),
            )
        )
    return plans
