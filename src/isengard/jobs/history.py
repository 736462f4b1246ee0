"""Job events kept in the database (job_events): status changes, loss points, logs, samples, artifacts.

Redis carries events live; these rows are what a finished job's page and a replay after Redis lost its data read.
Progress events are kept only when they carry a loss (the loss curve); the rest of progress is the job row's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isengard.db.models import JobEventRecord
from isengard.domain import ProgressEvent, parse_event


def should_persist(event: Any) -> bool:
    if isinstance(event, ProgressEvent):
        return event.loss is not None
    return True


def event_row(event: Any) -> JobEventRecord:
    return JobEventRecord(job_id=event.job_id, type=event.type, data=event.model_dump(mode="json"), created_at=event.at)


def add_events(session: Session, events: Iterable[Any]) -> None:
    session.add_all(event_row(event) for event in events if should_persist(event))


def load_events(session: Session, job_id: str, *, after_id: int = 0, types: Iterable[str] | None = None) -> list[Any]:
    """(row id, event model) pairs in the order they happened."""
    query = select(JobEventRecord).where(JobEventRecord.job_id == job_id, JobEventRecord.id > after_id)
    if types is not None:
        query = query.where(JobEventRecord.type.in_(list(types)))
    rows = session.scalars(query.order_by(JobEventRecord.id)).all()
    return [(row.id, parse_event(row.data)) for row in rows]


def smoothed_loss_before(session: Session, job_id: str, *, step: int, attempt: int) -> float | None:
    """The smoothed loss an earlier attempt reported last before `step`: where a resumed attempt's curve goes on."""
    best: tuple[int, int, float] | None = None
    for _row_id, event in load_events(session, job_id, types=("progress",)):
        if event.smoothed_loss is None or event.step >= step or (event.attempt or 0) >= attempt:
            continue
        key = (event.step, event.attempt or 0, event.smoothed_loss)
        if best is None or key[:2] >= best[:2]:
            best = key
    return best[2] if best is not None else None
