"""The bases this installation offers, as the training form and the LoRA library show them."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BaseDefaultsOut(BaseModel):
    resolution: int
    sample_steps: int
    guidance: float


class BaseMemoryFit(BaseModel):
    worker_id: str
    gpu_total_bytes: int | None
    chosen: str | None  # the memory profile `auto` takes for a default run on this base; None: nothing fits
    reason: str


class BaseOut(BaseModel):
    name: str
    label: str
    family: str
    default: bool
    description: str
    licence: str
    licence_url: str
    commercial_use: bool
    gated: bool
    repo_id: str
    distilled_repo_id: str | None
    available: bool = Field(description="its weights are complete on this machine (fast-test: its tiny model)")
    path: str | None
    reason: str | None = Field(description="why it is not available: what is missing, where, and how to get it")
    missing: list[str] = Field(description="component folders absent or without weights")
    download: str | None = Field(description="the command that puts its weights in place")
    defaults: BaseDefaultsOut
    distilled_defaults: BaseDefaultsOut | None
    memory: list[BaseMemoryFit] = Field(description="per live worker: the profile a default run on it would use")
