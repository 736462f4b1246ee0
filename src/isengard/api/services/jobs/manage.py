"""Job submission, listing, cancellation, artifacts and history.

Every change of a job's state is `isengard.jobs.states`'s; this module is the HTTP side of it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import redis
from fastapi import HTTPException
from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from isengard.api.schemas.jobs import (
    ArtifactOut,
    JobHistory,
    JobOut,
    JobPage,
    LogLine,
    LossPoint,
    StatusChange,
)
from isengard.api.services.jobs.events import event_ms, stream_position
from isengard.api.state import Services
from isengard.api.support import download_names
from isengard.api.support.rows import get_or_404
from isengard.db.models import Job, JobArtifact
from isengard.domain import ArtifactKind, JobKind, JobStatus, LogEvent, ProgressEvent, StatusEvent, utcnow
from isengard.jobs import states
from isengard.jobs.history import load_events
from isengard.jobs.states import Submission
from isengard.jobs.waiting import Waiting, waiting_jobs
from isengard.logging import correlation_id
from isengard.queue.workers import list_workers, worker_lost

log = logging.getLogger(__name__)


def submit_job(services: Services, session: Session, submission: Submission) -> Job:
    """Insert the job row (queued), commit it, then put it on the queue. Returns the job even if Redis is down."""
    return states.submit(
        session,
        services.redis,
        submission,
        event_maxlen=services.settings.event_stream_maxlen,
        max_attempts=services.settings.max_attempts,
        correlation_id=correlation_id.get(),
    )


def queue_state(services: Services, session: Session) -> dict[str, Waiting]:
    """Every queued job's place and estimated start (none when Redis, which knows the workers, is down)."""
    try:
        workers = list_workers(services.redis, services.settings.heartbeat_seconds)
    except redis.RedisError:
        return {}
    return waiting_jobs(session, workers)


def _with_waiting(out: JobOut, waiting: Waiting | None, now: datetime) -> JobOut:
    if waiting is None:
        return out
    start = None if waiting.starts_in_seconds is None else now + timedelta(seconds=waiting.starts_in_seconds)
    return out.model_copy(
        update={"queue_position": waiting.position, "estimated_start_at": start, "queue_note": waiting.note}
    )


def job_out(services: Services, job: Job, waiting: dict[str, Waiting] | None = None) -> JobOut:
    """The job as the API shows it; a running job whose worker was lost says so (Redis down says nothing); a
    queued one says where it stands (`waiting`: the queue's state, computed here when not given)."""
    out = JobOut.from_row(job)
    if out.status == JobStatus.QUEUED:
        if waiting is None:
            session = object_session(job)
            waiting = queue_state(services, session) if session is not None else {}
        return _with_waiting(out, waiting.get(job.id), utcnow())
    if out.status != JobStatus.RUNNING:
        return out
    quiet = (utcnow() - job.updated_at).total_seconds() if job.updated_at is not None else float("inf")
    try:
        lost = worker_lost(services.redis, job.id, job.worker_id, services.settings.heartbeat_seconds, quiet)
    except redis.RedisError:
        return out
    return out.model_copy(update={"worker_lost": lost})


def get_job(session: Session, job_id: str) -> Job:
    return get_or_404(session, Job, job_id, f"no job with id '{job_id}'")


def list_jobs(
    session: Session,
    *,
    kind: JobKind | None,
    status: JobStatus | None,
    character_id: str | None,
    limit: int,
    offset: int,
    services: Services | None = None,
) -> JobPage:
    query = select(Job)
    if kind is not None:
        query = query.where(Job.kind == kind.value)
    if status is not None:
        query = query.where(Job.status == status.value)
    if character_id is not None:
        query = query.where(Job.character_id == character_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit).offset(offset)).all()
    if services is None:
        return JobPage(items=[JobOut.from_row(job) for job in rows], total=total, limit=limit, offset=offset)
    waiting = queue_state(services, session) if any(job.status == JobStatus.QUEUED.value for job in rows) else {}
    items = [job_out(services, job, waiting) for job in rows]
    return JobPage(items=items, total=total, limit=limit, offset=offset)


def cancel_job(services: Services, session: Session, job_id: str) -> Job:
    """A queued job is cancelled at once; a running one gets a flag its plugin polls between steps."""
    get_job(session, job_id)
    try:
        return states.cancel(session, services.redis, job_id, event_maxlen=services.settings.event_stream_maxlen)
    except states.NotCancellableError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None


# --- Artifacts and history ------------------------------------------------------------------------------------------


def list_artifacts(session: Session, job_id: str, kind: ArtifactKind | None = None) -> list[ArtifactOut]:
    get_job(session, job_id)
    query = select(JobArtifact).where(JobArtifact.job_id == job_id)
    if kind is not None:
        query = query.where(JobArtifact.kind == kind.value)
    rows = session.scalars(query.order_by(JobArtifact.created_at, JobArtifact.id)).all()
    return [ArtifactOut.from_row(row) for row in rows]


def artifact_file(services: Services, session: Session, job_id: str, artifact_id: str) -> tuple[Path, str]:
    """The file of an artifact, resolved from its id inside the data tree only."""
    artifact = session.get(JobArtifact, artifact_id)
    if artifact is None or artifact.job_id != job_id:
        raise HTTPException(status_code=404, detail=f"job {job_id} has no artifact '{artifact_id}'")
    path = services.data.stored_file(artifact.path)
    if path is None:
        raise HTTPException(status_code=404, detail=f"the file of artifact '{artifact.name}' is not available")
    job = get_job(session, job_id)
    return path, download_names.artifact_name(session, job, artifact)


def job_history(session: Session, job_id: str) -> JobHistory:
    job = get_job(session, job_id)
    loss: list[LossPoint] = []
    logs: list[LogLine] = []
    statuses: list[StatusChange] = []
    newest_ms = 0
    for _row_id, event in load_events(session, job_id, types=("progress", "log", "status", "error")):
        newest_ms = max(newest_ms, event_ms(event))
        if isinstance(event, ProgressEvent):
            loss.append(
                LossPoint(
                    step=event.step,
                    total=event.total,
                    loss=event.loss,
                    smoothed_loss=event.smoothed_loss,
                    lr=event.lr,
                    at=event.at,
                    attempt=event.attempt,
                )
            )
        elif isinstance(event, LogEvent):
            logs.append(LogLine(level=event.level, message=event.message, at=event.at))
        elif isinstance(event, StatusEvent):
            statuses.append(StatusChange(status=event.status, message=event.message, at=event.at))
        else:
            logs.append(LogLine(level="error", message=event.message, at=event.at))
    artifacts = list_artifacts(session, job_id)
    return JobHistory(
        job=JobOut.from_row(job),
        loss=loss,
        logs=logs,
        statuses=statuses,
        samples=[a for a in artifacts if a.kind == ArtifactKind.SAMPLE],
        checkpoints=[a for a in artifacts if a.kind in (ArtifactKind.CHECKPOINT, ArtifactKind.LORA)],
        artifacts=artifacts,
        cursor=stream_position(newest_ms) if newest_ms else None,
    )
