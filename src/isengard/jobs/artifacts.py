"""A job's artifacts in the database: the `job_artifacts` row, and what it becomes for its kind of job (a LoRA in
the library, an image in the gallery). Written by the worker's JobContext; read by the API's job pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from isengard.db.models import Generation, JobArtifact, Lora
from isengard.db.session import session_scope
from isengard.domain import ArtifactKind, JobKind
from isengard.jobs.records_generation import record_generation
from isengard.jobs.records_training import record_lora


@dataclass(frozen=True)
class JobSnapshot:
    """What the artifact records need to know about their job, read once when the job starts."""

    id: str
    kind: str
    plugin: str
    character_id: str | None
    name: str


@dataclass(frozen=True)
class StoredArtifact:
    id: str
    name: str
    meta: dict[str, Any]
    # The `loras` row a LoRA or checkpoint became.
    lora_id: str | None


def record_artifact(
    sessions: sessionmaker[Session],
    job: JobSnapshot,
    *,
    relative_path: str,
    kind: ArtifactKind,
    name: str,
    step: int | None,
    size: int,
    meta: dict[str, Any],
) -> StoredArtifact:
    """Record the artifact row (and its LoRA / gallery row).

    Idempotent per (job, path): an attempt retried after a crash saves the files the earlier attempt had already
    recorded a second time, and each must stay one row (updated, keeping its id) rather than two.
    """
    lora_id: str | None = None
    with session_scope(sessions) as session:
        row = session.scalars(
            select(JobArtifact).where(JobArtifact.job_id == job.id, JobArtifact.path == relative_path).limit(1)
        ).first()
        if row is None:
            row = JobArtifact(job_id=job.id, path=relative_path)
            session.add(row)
        row.kind = kind.value
        row.name = name
        row.step = step
        row.bytes = size
        row.meta = meta
        session.flush()
        if kind in (ArtifactKind.LORA, ArtifactKind.CHECKPOINT):
            lora_id = record_lora(session, job, row).id
        elif kind == ArtifactKind.OUTPUT and job.kind == JobKind.GENERATION:
            record_generation(session, job, row)
        return StoredArtifact(id=row.id, name=row.name, meta=dict(row.meta or {}), lora_id=lora_id)


def forget_artifact(sessions: sessionmaker[Session], job_id: str, artifact_id: str, relative_path: str) -> None:
    """Delete an artifact's rows: its own, and the LoRA or gallery row it became."""
    with session_scope(sessions) as session:
        session.execute(delete(JobArtifact).where(JobArtifact.id == artifact_id, JobArtifact.job_id == job_id))
        session.execute(delete(Lora).where(Lora.job_id == job_id, Lora.path == relative_path))
        session.execute(delete(Generation).where(Generation.job_id == job_id, Generation.path == relative_path))


def artifacts_of(sessions: sessionmaker[Session], job_id: str) -> list[JobArtifact]:
    """Every artifact row a job has recorded, all attempts, oldest first (detached from the session)."""
    with sessions() as session:
        rows = list(
            session.scalars(
                select(JobArtifact).where(JobArtifact.job_id == job_id).order_by(JobArtifact.created_at)
            ).all()
        )
        session.expunge_all()
        return rows
