"""Routes for jobs: list, detail, cancel, artifacts, history, and live events over SSE."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import FileResponse
from sse_starlette import EventSourceResponse

from isengard.api.deps import DbSession, ServicesDep
from isengard.api.middleware import ErrorMessage
from isengard.api.schemas.jobs import (
    JOB_EVENT_STREAM,
    STATUS_EVENT_STREAM,
    ArtifactOut,
    JobHistory,
    JobOut,
    JobPage,
)
from isengard.api.services.jobs import events as job_events
from isengard.api.services.jobs import manage as service
from isengard.api.services.jobs import rerun, stopped_runs
from isengard.api.support.params import OptionalId, path_id
from isengard.api.support.text import NoNul
from isengard.domain import ArtifactKind, JobKind, JobStatus

router = APIRouter(tags=["jobs"])

SSE_PING_SECONDS = 15
JobId = Annotated[str, path_id("job")]
ArtifactId = Annotated[str, path_id("artifact")]
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=64), NoNul]
Since = Annotated[str | None, Query(max_length=64, description="same as the Last-Event-ID header"), NoNul]


@router.get("/jobs", response_model=JobPage)
def list_jobs(
    db: DbSession,
    services: ServicesDep,
    kind: JobKind | None = None,
    status: JobStatus | None = None,
    character_id: OptionalId = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JobPage:
    return service.list_jobs(
        db, kind=kind, status=status, character_id=character_id, limit=limit, offset=offset, services=services
    )


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: JobId, db: DbSession, services: ServicesDep) -> JobOut:
    return service.job_out(services, service.get_job(db, job_id))


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    responses={409: {"model": ErrorMessage, "description": "the job has already finished"}},
)
def cancel_job(job_id: JobId, db: DbSession, services: ServicesDep) -> JobOut:
    return JobOut.from_row(service.cancel_job(services, db, job_id))


@router.post("/jobs/{job_id}/resume", response_model=JobOut)
def resume_job(job_id: JobId, db: DbSession, services: ServicesDep) -> JobOut:
    """A cancelled or failed training run continues from its last checkpoint, as a new attempt of the same run."""
    return JobOut.from_row(stopped_runs.resume_job(services, db, job_id))


@router.post(
    "/jobs/{job_id}/rerun",
    response_model=JobOut,
    status_code=201,
    responses={409: {"model": ErrorMessage, "description": "the job has not ended, or what it used is gone"}},
)
def rerun_job(job_id: JobId, db: DbSession, services: ServicesDep) -> JobOut:
    """A new job with the settings of one that has ended (a training run trains on the dataset as it is now)."""
    return service.job_out(services, rerun.rerun_job(services, db, job_id))


@router.delete(
    "/jobs/{job_id}",
    status_code=204,
    responses={409: {"model": ErrorMessage, "description": "the job has not ended, or its LoRA is in use"}},
)
def delete_job(job_id: JobId, db: DbSession, services: ServicesDep) -> Response:
    """A job that has ended, with its history and files: a run's checkpoints and LoRAs (refused while one is in
    use), a generation's images."""
    stopped_runs.delete_job(services, db, job_id)
    return Response(status_code=204)


@router.get("/jobs/{job_id}/artifacts", response_model=list[ArtifactOut])
def list_artifacts(job_id: JobId, db: DbSession, kind: ArtifactKind | None = None) -> list[ArtifactOut]:
    return service.list_artifacts(db, job_id, kind)


@router.get("/jobs/{job_id}/artifacts/{artifact_id}/file", response_class=FileResponse)
def artifact_file(job_id: JobId, artifact_id: ArtifactId, db: DbSession, services: ServicesDep) -> FileResponse:
    path, name = service.artifact_file(services, db, job_id, artifact_id)
    # Weights download; images and text open in the page, still with their real name for "Save as".
    disposition = "attachment" if name.endswith(".safetensors") else "inline"
    return FileResponse(path, filename=name, content_disposition_type=disposition)


@router.get("/jobs/{job_id}/history", response_model=JobHistory)
def job_history(job_id: JobId, db: DbSession) -> JobHistory:
    return service.job_history(db, job_id)


@router.get("/jobs/{job_id}/events", response_class=EventSourceResponse, **JOB_EVENT_STREAM)
def job_event_stream(
    job_id: JobId,
    services: ServicesDep,
    last_event_id: LastEventId = None,
    since: Since = None,
) -> EventSourceResponse:
    # A short session of its own: a request-scoped one would stay open for as long as the stream.
    with services.sessions() as session:
        service.get_job(session, job_id)  # 404 before the stream opens
    source = job_events.job_events(services, job_id, last_event_id or since)
    return EventSourceResponse(source, ping=SSE_PING_SECONDS)


@router.get("/events", response_class=EventSourceResponse, **STATUS_EVENT_STREAM)
def all_events(
    services: ServicesDep,
    last_event_id: LastEventId = None,
    since: Since = None,
) -> EventSourceResponse:
    source = job_events.all_status_events(services, last_event_id or since)
    return EventSourceResponse(source, ping=SSE_PING_SECONDS)
