"""Response models of the job routes; training and generation routes answer with `JobOut` too."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, RootModel

from isengard.db.models import Job, JobArtifact
from isengard.domain import ArtifactKind, JobEvent, JobKind, JobStatus, StatusEvent, artifact_url, utcnow


class JobOut(BaseModel):
    id: str
    kind: JobKind
    status: JobStatus
    plugin: str
    character_id: str | None
    name: str
    run_number: int | None = Field(default=None, description="training runs: 1, 2, ... per character")
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
    worker_lost: bool = Field(default=False, description="running, but its worker stopped sending heartbeats")
    queue_position: int | None = Field(
        default=None, description="queued: its place among the queued jobs of its kind, 1 = next"
    )
    estimated_start_at: datetime | None = Field(
        default=None, description="queued: when it should start, from the live workers and recent durations"
    )
    queue_note: str | None = Field(default=None, description="queued: why it cannot start (no worker runs it)")

    @classmethod
    def from_row(cls, job: Job) -> JobOut:
        duration: float | None = None
        if job.started_at is not None:
            end = job.finished_at or utcnow()
            duration = round(max(0.0, (end - job.started_at).total_seconds()), 3)
        return cls(
            id=job.id,
            kind=JobKind(job.kind),
            status=JobStatus(job.status),
            plugin=job.plugin,
            character_id=job.character_id,
            name=job.name,
            run_number=job.run_number,
            config=job.config or {},
            progress=job.progress or {},
            result=job.result or {},
            error=job.error,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            worker_id=job.worker_id,
            cancel_requested=bool(job.cancel_requested),
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            duration_seconds=duration,
        )


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

    @classmethod
    def from_row(cls, artifact: JobArtifact) -> ArtifactOut:
        return cls(
            id=artifact.id,
            job_id=artifact.job_id,
            kind=ArtifactKind(artifact.kind),
            name=artifact.name,
            step=artifact.step,
            bytes=artifact.bytes,
            meta=artifact.meta or {},
            created_at=artifact.created_at,
            url=artifact_url(artifact.job_id, artifact.id),
        )


class LossPoint(BaseModel):
    step: int
    total: int
    loss: float | None = None
    smoothed_loss: float | None = None
    lr: float | None = None
    at: datetime
    attempt: int | None = Field(
        default=None, description="the attempt that reported the point; after a resume a step appears once per attempt"
    )


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
    cursor: str | None = Field(
        default=None,
        description="pass as `since` to the job's event stream to receive only what happened after this history",
    )


class JobEventData(RootModel[JobEvent]):
    """The JSON `data` of one server-sent job event; the SSE `event` name is its `type`."""


def event_stream(model: type[BaseModel]) -> dict[str, Any]:
    """Route arguments that document a server-sent-event route whose events each carry `model` as their data.

    FastAPI publishes a model only as JSON: `response_model` registers it as a schema component (the route returns
    its own streaming response, so nothing is validated), and the 200 answer then names it as the stream's content.
    """
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "response_model": model,
        "openapi_extra": {"responses": {"200": {"content": {"text/event-stream": {"schema": ref}}}}},
    }


JOB_EVENT_STREAM = event_stream(JobEventData)
STATUS_EVENT_STREAM = event_stream(StatusEvent)
