"""What a worker reads of a job row (once per claim), and what trying to start it can come to: a typed outcome
the runner matches on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from isengard.db.models import Job
from isengard.domain import JobStatus


@dataclass(frozen=True)
class JobRow:
    """A job row as a worker reads it, once per claim: everything placement, start and the plugin need."""

    id: str
    kind: str
    plugin: str
    status: JobStatus
    character_id: str | None
    name: str
    payload: dict[str, Any]
    correlation_id: str | None
    cancel_requested: bool
    attempts: int
    max_attempts: int
    worker_id: str | None

    @classmethod
    def of(cls, job: Job) -> JobRow:
        return cls(
            id=job.id,
            kind=job.kind,
            plugin=job.plugin,
            status=JobStatus(job.status),
            character_id=job.character_id,
            name=job.name,
            payload=dict(job.payload or {}),
            correlation_id=job.correlation_id,
            cancel_requested=job.cancel_requested,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            worker_id=job.worker_id,
        )


@dataclass(frozen=True)
class Started:
    """The row is now running on this worker, as attempt `attempt`."""

    job: JobRow
    attempt: int


@dataclass(frozen=True)
class NothingToRun:
    """Finished, cancelled, given up, or unknown: the entry is only acknowledged."""

    reason: str
    # The final status this start recorded (a cancel it found requested, attempts used up); None if it recorded none.
    recorded: JobStatus | None = None


@dataclass(frozen=True)
class RowChanged:
    """Someone changed the row between the read and the update: read it again."""


StartOutcome = Started | NothingToRun | RowChanged
