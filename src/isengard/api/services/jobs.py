"""Job submission, listing, cancellation, artifacts and history.

A job is a database row first and a stream entry second: `submit_job` commits the row, then enqueues it. When
Redis is down the row simply stays `queued` and the API's recovery task enqueues it once Redis answers again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import redis
from fastapi import HTTPException
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from isengard.api.schemas.jobs import (
    ArtifactOut,
    JobHistory,
    JobOut,
    JobPage,
    LogLine,
    LossPoint,
    StatusChange,
)
from isengard.api.services.rows import get_or_404
from isengard.api.state import Services
from isengard.db.models import Job, JobArtifact
from isengard.domain import ArtifactKind, JobKind, JobStatus, LogEvent, ProgressEvent, StatusEvent, utcnow
from isengard.logging import correlation_id
from isengard.queue import events as queue_events
from isengard.queue import jobs as queue
from isengard.queue.history import add_events, load_events

log = logging.getLogger(__name__)


def _publish(services: Services, event: Any) -> None:
    queue_events.publish(services.redis, event, maxlen=services.settings.event_stream_maxlen)


def submit_job(
    services: Services,
    session: Session,
    *,
    kind: JobKind,
    plugin: str,
    payload: dict[str, Any],
    config: dict[str, Any],
    character_id: str | None,
    name: str,
) -> Job:
    """Insert the job row (queued), commit it, then put it on the queue. Returns the job even if Redis is down."""
    job = Job(
        kind=JobKind(kind).value,
        status=JobStatus.QUEUED.value,
        plugin=plugin,
        character_id=character_id,
        name=name,
        config=config,
        payload=payload,
        max_attempts=services.settings.max_attempts,
        correlation_id=correlation_id.get(),
    )
    session.add(job)
    session.flush()
    queued = StatusEvent(job_id=job.id, status=JobStatus.QUEUED)
    add_events(session, [queued])
    session.commit()
    try:
        job.stream_id = queue.enqueue(services.redis, job.kind, job.id)
        session.commit()
    except redis.RedisError as exc:
        # The row is the source of truth: the recovery task enqueues it when Redis is back.
        log.warning("job saved but not enqueued: redis is unavailable", extra={"job_id": job.id, "error": str(exc)})
        return job
    _publish(services, queued)
    log.info("job submitted", extra={"job_id": job.id, "kind": job.kind, "plugin": plugin})
    return job


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
    return JobPage(items=[JobOut.from_row(job) for job in rows], total=total, limit=limit, offset=offset)


def cancel_job(services: Services, session: Session, job_id: str) -> Job:
    """A queued job is cancelled at once; a running one gets a flag its plugin polls between steps."""
    job = get_job(session, job_id)
    if JobStatus(job.status).is_final:
        raise HTTPException(status_code=409, detail=f"job {job_id} is already {job.status}; nothing to cancel")
    now = utcnow()
    # Conditional update: a worker may be moving the job to running at this very moment.
    cancelled_queued = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
        .values(status=JobStatus.CANCELLED.value, cancel_requested=True, finished_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(cancelled_queued, "rowcount", 0) == 1:
        event = StatusEvent(job_id=job_id, status=JobStatus.CANCELLED, message="cancelled before it started")
        add_events(session, [event])
        session.commit()
        session.refresh(job)
        try:
            if job.stream_id:
                queue.remove_entry(services.redis, job.kind, job.stream_id)
        except redis.RedisError:
            pass  # a worker that meets the entry later sees the cancelled row and acks it
        _publish(services, event)
        return job
    session.refresh(job)
    if JobStatus(job.status).is_final:
        raise HTTPException(status_code=409, detail=f"job {job_id} is already {job.status}; nothing to cancel")
    job.cancel_requested = True
    notice = LogEvent(job_id=job_id, level="warning", message="cancel requested; stopping at the next safe point")
    add_events(session, [notice])
    session.commit()
    try:
        queue.request_cancel(services.redis, job_id)
    except redis.RedisError:
        # The worker also reads cancel_requested from the database when Redis is unreachable.
        log.warning("cancel flag not set in redis", extra={"job_id": job_id})
    _publish(services, notice)
    return job


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
    return path, artifact.name


def job_history(session: Session, job_id: str) -> JobHistory:
    job = get_job(session, job_id)
    loss: list[LossPoint] = []
    logs: list[LogLine] = []
    statuses: list[StatusChange] = []
    for _row_id, event in load_events(session, job_id, types=("progress", "log", "status", "error")):
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
    )
