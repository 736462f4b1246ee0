"""Health and capabilities: the state of the database, Redis and workers; what this installation can do."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from isengard.api.schemas.bases import BaseOut
from isengard.domain import PluginKind
from isengard.models.locate import ModelStatus
from isengard.models.planning import WorkerMemoryPlan
from isengard.plugins.api import Capability
from isengard.plugins.training.interface import RECOMMENDED_IMAGES, RECOMMENDED_MAX_IMAGES


class ComponentHealth(BaseModel):
    status: Literal["up", "down"]
    detail: str | None = None
    latency_ms: float | None = None


class WorkerInfo(BaseModel):
    id: str
    host: str | None = None
    pid: int | None = None
    kinds: list[str] = []
    plugins: dict[str, list[str]] = {}  # job kind -> plugins this worker can run
    gpu_memory_mb: int | None = None
    gpu_total_bytes: int | None = None  # None: the worker has no GPU
    gpu_free_bytes: int | None = None
    current_job: str | None = None
    state: str | None = None
    alive: bool = Field(default=True, description="false once the worker missed several heartbeats")
    last_beat_seconds: float | None = Field(default=None, description="seconds since the worker's last heartbeat")


class WorkersHealth(ComponentHealth):
    count: int = 0
    workers: list[WorkerInfo] = []


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    mode: str
    database: ComponentHealth
    redis: ComponentHealth
    workers: WorkersHealth
    recommended_images: list[int] = Field(
        default_factory=lambda: [RECOMMENDED_IMAGES, RECOMMENDED_MAX_IMAGES],
        description="the dataset size that trains well, fewest and most: the one range every page states",
    )


class PluginCapability(BaseModel):
    name: str
    kind: PluginKind
    description: str = ""
    capability: Capability


class TorchInfo(BaseModel):
    version: str | None
    cuda_available: bool
    cuda_version: str | None = None
    gpus: list[dict[str, Any]] = []


class Capabilities(BaseModel):
    mode: str
    bases: list[BaseOut] = Field(
        default_factory=list,
        description="every base model of the registry: available here or exactly what is missing of it",
    )
    version: str
    plugins: dict[str, list[PluginCapability]]
    torch: TorchInfo
    model: ModelStatus
    memory: list[WorkerMemoryPlan] = Field(
        default_factory=list,
        description="per live worker: its GPU and the memory plans of a default flux-lora run and of generation on "
        "it (a worker without a GPU has plans with fits = null and a reason saying so)",
    )
