"""The job's state machine, one owner: submit, start, progress, finish, fail, requeue, cancel.

Every change of a job row's status happens here, each as one conditional UPDATE on the state its caller read,
stored in the same transaction as the events that tell it; the events go to Redis only after the commit. A change
made in between (a cancel from the API, another worker taking the job over) makes the update match nothing, and
the caller learns so instead of overwriting it.

    queued --start--> running --finish--> succeeded | failed | cancelled
      |                  |--requeue--> queued        (worker shutdown: another worker resumes it)
      '--cancel--> cancelled                          (a running job gets a flag its plugin polls)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import redis
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from isengard.db.models import Job
from isengard.db.session import session_scope
from isengard.domain import ErrorEvent, JobKind, JobStatus, LogEvent, StatusEvent, utcnow
from isengard.jobs.history import add_events, smoothed_loss_before
from isengard.jobs.rows import JobRow, NothingToRun, RowChanged, Started, StartOutcome
from isengard.queue import events as queue_events
from isengard.queue import jobs as queue

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 4000


class JobNotFoundError(LookupError):
    pass


class NotCancellableError(RuntimeError):
    """The job already reached a final state."""


class JobStates:
    """The state changes a worker makes, on its own sessions; events published with the settings' stream cap."""

    def __init__(self, sessions: sessionmaker[Session], client: redis.Redis, *, event_maxlen: int) -> None:
        self.sessions = sessions
        self.redis = client
        self.event_maxlen = event_maxlen
        # Events Redis cannot take during an outage wait here, in order, instead of being lost.
        self.outbox = queue_events.EventOutbox(client, maxlen=event_maxlen)

    def publish(self, events: Iterable[Any]) -> None:
        for event in events:
            self.outbox.publish(event)

    def _transition(self, conditions: tuple[Any, ...], values: dict[str, Any], events: list[Any]) -> bool:
        with session_scope(self.sessions) as session:
            applied = transition(session, conditions, values, events)
        if applied:
            self.publish(events)
        return applied

    # --- Reading --------------------------------------------------------------------------------------------------

    def read(self, job_id: str) -> JobRow | None:
        with self.sessions() as session:
            job = session.get(Job, job_id)
            return JobRow.of(job) if job is not None else None

    # --- Start ----------------------------------------------------------------------------------------------------

    def start(self, row: JobRow, *, worker_id: str, entry_id: str, resume_step: int | None = None) -> StartOutcome:
        """Move the row just read to running here; or to its end when it was cancelled or ran out of attempts.

        `resume_step` is the checkpoint a later attempt continues from, for the status line the user reads."""
        if row.status.is_final:
            return NothingToRun(f"already {row.status}")
        read_state = (Job.id == row.id, Job.status == row.status.value, Job.attempts == row.attempts)
        now = utcnow()
        if row.cancel_requested:
            event = StatusEvent(job_id=row.id, status=JobStatus.CANCELLED, message="cancelled")
            values = {"status": JobStatus.CANCELLED.value, "finished_at": now, "updated_at": now}
            if not self._transition(read_state, values, [event]):
                return RowChanged()
            return NothingToRun("cancelled", JobStatus.CANCELLED)
        if row.attempts >= row.max_attempts:
            error = (
                f"gave up after {row.attempts} attempts: each attempt stopped its worker (crash or kill) "
                f"before the job finished; last worker: {row.worker_id or 'unknown'}"
            )
            events: list[Any] = failure_events(row.id, error)
            values = {"status": JobStatus.FAILED.value, "error": error, "finished_at": now, "updated_at": now}
            if not self._transition(read_state, values, events):
                return RowChanged()
            return NothingToRun("gave up", JobStatus.FAILED)
        attempt = row.attempts + 1
        if attempt > 1:
            # What the user sees: where the run picks up, and which attempt this is.
            where = f"resumed from step {resume_step}" if resume_step else "resumed"
            message = f"{where} (attempt {attempt} of {row.max_attempts})"
            if row.status == JobStatus.RUNNING:
                message += f" after worker {row.worker_id or '?'} was lost"
        else:
            message = f"started on {worker_id} (attempt {attempt} of {row.max_attempts})"
        started = StatusEvent(job_id=row.id, status=JobStatus.RUNNING, message=message, attempt=attempt)
        values = {
            "status": JobStatus.RUNNING.value,
            "attempts": attempt,
            "worker_id": worker_id,
            "stream_id": entry_id,
            "started_at": func.coalesce(Job.started_at, now),
            "error": None,
            "updated_at": now,
        }
        if not self._transition((*read_state, Job.cancel_requested.is_(False)), values, [started]):
            return RowChanged()
        return Started(
            job=replace(row, status=JobStatus.RUNNING, attempts=attempt, worker_id=worker_id),
            attempt=attempt,
        )

    def fail_unplaceable(self, row: JobRow, error: str) -> bool:
        """No live worker can run the job's plugin: fail it, conditional on the status just read."""
        now = utcnow()
        error = error[:MAX_ERROR_CHARS]
        values = {"status": JobStatus.FAILED.value, "error": error, "finished_at": now, "updated_at": now}
        return self._transition(
            (Job.id == row.id, Job.status == row.status.value), values, failure_events(row.id, error)
        )

    # --- Running --------------------------------------------------------------------------------------------------

    def record_progress(self, job_id: str, events: list[Any], progress: dict[str, Any] | None) -> None:
        """A running job's buffered events and latest progress, written together."""
        if not events and progress is None:
            return
        with session_scope(self.sessions) as session:
            add_events(session, events)
            if progress is not None:
                session.execute(
                    update(Job)
                    .where(Job.id == job_id)
                    .values(progress=progress, updated_at=utcnow())
                    .execution_options(synchronize_session=False)
                )

    def smoothed_loss_before(self, job_id: str, *, step: int, attempt: int) -> float | None:
        with self.sessions() as session:
            return smoothed_loss_before(session, job_id, step=step, attempt=attempt)

    def cancel_requested(self, job_id: str) -> bool:
        """The database's cancel flag, which survives Redis losing its own."""
        with self.sessions() as session:
            return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    # --- Ends -----------------------------------------------------------------------------------------------------

    def finish(
        self,
        job_id: str,
        *,
        worker_id: str,
        status: JobStatus,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        message: str | None = None,
    ) -> bool:
        """Record the final state and publish it; False when the row is no longer running on this worker."""
        events: list[Any] = []
        if error is not None:
            error = error[:MAX_ERROR_CHARS]
            events.append(ErrorEvent(job_id=job_id, message=error))
        events.append(StatusEvent(job_id=job_id, status=status, message=message or error))
        values: dict[str, Any] = {"status": status.value, "finished_at": utcnow(), "error": error}
        if result is not None:
            values["result"] = result
        # Only the owner finishes the job: after a lost lease another worker's outcome must stand.
        return self._transition(_owned_and_running(job_id, worker_id), values, events)

    def fail(self, job_id: str, *, worker_id: str, error: str) -> bool:
        return self.finish(job_id, worker_id=worker_id, status=JobStatus.FAILED, error=error)

    def requeue(self, job_id: str, *, worker_id: str, kind: str, entry_id: str) -> bool:
        """Worker shutdown: back to queued (this attempt does not count) on a fresh entry another worker takes."""
        event = StatusEvent(
            job_id=job_id, status=JobStatus.QUEUED, message=f"worker {worker_id} stopped; the job will resume"
        )
        values = {"status": JobStatus.QUEUED.value, "worker_id": None, "attempts": Job.attempts - 1}
        with session_scope(self.sessions) as session:
            if not transition(session, _owned_and_running(job_id, worker_id), values, [event]):
                return False
        try:
            new_entry = queue.requeue(self.redis, kind, entry_id, job_id)
            with session_scope(self.sessions) as session:
                session.execute(update(Job).where(Job.id == job_id).values(stream_id=new_entry))
        except redis.RedisError as exc:
            # Unacked, the entry is reclaimed once the lease expires; recovery re-enqueues if Redis lost it.
            log.warning("could not requeue on shutdown", extra={"job_id": job_id, "error": str(exc)})
        self.publish([event])
        return True


def _owned_and_running(job_id: str, worker_id: str) -> tuple[Any, ...]:
    return (Job.id == job_id, Job.worker_id == worker_id, Job.status == JobStatus.RUNNING.value)


def failure_events(job_id: str, error: str) -> list[Any]:
    return [
        ErrorEvent(job_id=job_id, message=error),
        StatusEvent(job_id=job_id, status=JobStatus.FAILED, message=error),
    ]


def transition(session: Session, conditions: tuple[Any, ...], values: dict[str, Any], events: list[Any]) -> bool:
    """Update the job row only where `conditions` still hold, and add `events` with it; False when they did not."""
    changed = session.execute(
        update(Job).where(*conditions).values(**values).execution_options(synchronize_session=False)
    )
    applied = getattr(changed, "rowcount", 0) == 1
    if applied:
        add_events(session, events)
    return applied


# --- The API's side: submission and cancellation, on the request's session --------------------------------------


@dataclass(frozen=True)
class Submission:
    """What a new job is: its kind and plugin, what it runs on, and the name and run number people see."""

    kind: JobKind
    plugin: str
    payload: dict[str, Any]
    config: dict[str, Any]
    name: str
    character_id: str | None = None
    run_number: int | None = None
    base: str | None = None  # the base model it trains on or generates with (models/bases)


def submit(
    session: Session,
    client: redis.Redis,
    submission: Submission,
    *,
    event_maxlen: int,
    max_attempts: int,
    correlation_id: str | None,
) -> Job:
    """Insert the job row (queued), commit it, then put it on the queue. Returns the job even if Redis is down.

    A job is a database row first and a stream entry second: when Redis is down the row simply stays `queued`
    and the API's recovery task enqueues it once Redis answers again.
    """
    job = Job(
        kind=JobKind(submission.kind).value,
        status=JobStatus.QUEUED.value,
        run_number=submission.run_number,
        base=submission.base,
        plugin=submission.plugin,
        character_id=submission.character_id,
        name=submission.name,
        config=submission.config,
        payload=submission.payload,
        max_attempts=max_attempts,
        correlation_id=correlation_id,
    )
    session.add(job)
    session.flush()
    queued = StatusEvent(job_id=job.id, status=JobStatus.QUEUED)
    add_events(session, [queued])
    session.commit()
    # Announced before it is enqueued: a worker may claim it at once, and its "running" must follow "queued".
    queue_events.publish(client, queued, maxlen=event_maxlen)
    try:
        job.stream_id = queue.enqueue(client, job.kind, job.id)
        session.commit()
    except redis.RedisError as exc:
        log.warning("job saved but not enqueued: redis is unavailable", extra={"job_id": job.id, "error": str(exc)})
        return job
    log.info("job submitted", extra={"job_id": job.id, "kind": job.kind, "plugin": job.plugin})
    return job


def cancel(session: Session, client: redis.Redis, job_id: str, *, event_maxlen: int) -> Job:
    """A queued job is cancelled at once; a running one gets a flag its plugin polls between steps."""
    job = session.get(Job, job_id)
    if job is None:
        raise JobNotFoundError(job_id)
    # Each try is conditional on the status it expects: a worker may be starting, finishing or requeueing the job.
    for _ in range(3):
        if JobStatus(job.status).is_final:
            break
        now = utcnow()
        if job.status == JobStatus.QUEUED.value:
            event: Any = StatusEvent(job_id=job_id, status=JobStatus.CANCELLED, message="cancelled before it started")
            values = {"status": JobStatus.CANCELLED.value, "finished_at": now}
        else:
            event = LogEvent(
                job_id=job_id, level="warning", message="cancel requested; stopping at the next safe point"
            )
            values = {}
        expected = (Job.id == job_id, Job.status == job.status)
        if transition(session, expected, {**values, "cancel_requested": True, "updated_at": now}, [event]):
            session.commit()
            session.refresh(job)
            try:
                if isinstance(event, StatusEvent) and job.stream_id:
                    queue.ack(client, job.kind, job.stream_id)
                else:
                    queue.request_cancel(client, job_id)
            except redis.RedisError:
                # A worker that meets the entry sees the cancelled row; a running one also polls the database flag.
                log.warning("cancel not passed on to redis", extra={"job_id": job_id})
            queue_events.publish(client, event, maxlen=event_maxlen)
            return job
        session.refresh(job)
    raise NotCancellableError(f"job {job_id} is already {job.status}; nothing to cancel")


class NotResumableError(RuntimeError):
    """The run is not stopped (cancelled or failed), or another request changed it meanwhile."""


def resume(session: Session, client: redis.Redis, job: Job, *, step: int, event_maxlen: int) -> Job:
    """A cancelled or failed run goes back on the queue: a new attempt of the same run, continuing from the
    checkpoint of `step` (found by the caller in the run's folder).

    The allowance of attempts stays what it was ("attempt 2 of 3", not "of 4"); only a run that used all of them
    gets the one more this resume needs.
    """
    if job.status not in (JobStatus.CANCELLED.value, JobStatus.FAILED.value):
        raise NotResumableError(f"the run is {job.status}: only a cancelled or failed run resumes")
    now = utcnow()
    event = StatusEvent(job_id=job.id, status=JobStatus.QUEUED, message=f"resuming from the checkpoint of step {step}")
    values = {
        "status": JobStatus.QUEUED.value,
        "cancel_requested": False,
        "error": None,
        "worker_id": None,
        "finished_at": None,
        "updated_at": now,
        "max_attempts": max(job.max_attempts, job.attempts + 1),
    }
    try:
        applied = transition(session, (Job.id == job.id, Job.status == job.status), values, [event])
        session.commit()
    except IntegrityError:  # deleted meanwhile: its event row has no job to point at any more
        session.rollback()
        applied = False
    if not applied:
        raise NotResumableError("the run changed meanwhile (deleted or resumed); reload it")
    session.refresh(job)
    try:
        queue.clear_job_keys(client, job.id)  # the earlier attempt's cancel flag must not stop this one
        # Announced before it is enqueued: a worker may claim it at once, and its "running" must follow "queued".
        queue_events.publish(client, event, maxlen=event_maxlen)
        job.stream_id = queue.enqueue(client, job.kind, job.id)
        session.commit()
    except redis.RedisError as exc:
        # Queued in the database: the recovery task enqueues it once Redis answers.
        log.warning("resume saved but not enqueued: redis is unavailable", extra={"job_id": job.id, "error": str(exc)})
    return job


def detach_character(session: Session, character_id: str) -> int:
    """Before a character is deleted: its finished jobs keep their history without it. Returns how many of its jobs
    are still queued or running; while any is, nothing changes."""
    active = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
    count = session.scalar(
        select(func.count()).select_from(Job).where(Job.character_id == character_id, Job.status.in_(active))
    )
    if not count:
        session.execute(update(Job).where(Job.character_id == character_id).values(character_id=None))
    return count or 0
