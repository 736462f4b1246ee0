"""Response models of the job routes; training and generation routes answer with `JobOut` too."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from isengard.domain import ArtifactKind, JobKind, JobStatus


class JobOut(BaseModel):
    id: str
    kind: JobKind
    status: JobStatus
    plugin: str
    character_id: str | None
    name: str
    config: dict[str, Any] = Field(default_factory=dict)
    progress: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    attempts: int
    max_attempts: int
    worker_id: str | None = None
    cancel_requested: bool = False
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = Field(default=None, description="running time so far, or in total once finished")


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    limit: int
    offset: int


class ArtifactOut(BaseModel):
    id: str
    job_id: str
    kind: ArtifactKind
    name: str
    step: int | None = None
    bytes: int
    meta: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    url: str


class LossPoint(BaseModel):
    step: int
    total: int
    loss: float | None = None
    smoothed_loss: float | None = None
    lr: float | None = None
    at: datetime


class LogLine(BaseModel):
    level: str
    message: str
    at: datetime


class StatusChange(BaseModel):
    status: JobStatus
    message: str | None = None
    at: datetime


class JobHistory(BaseModel):
    """Everything a finished job's page shows, from the database alone."""

    job: JobOut
    loss: list[LossPoint]
    logs: list[LogLine]
    statuses: list[StatusChange]
    samples: list[ArtifactOut]
    checkpoints: list[ArtifactOut]
    artifacts: list[ArtifactOut]
