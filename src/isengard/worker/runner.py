"""Runs one claimed queue entry: lease, checks against the database row, the plugin, the final state, the ack.

The order matters for "never run twice": take the lease first, then read the row. A job the database already
finished is only acknowledged; a job another worker holds a live lease on is left to it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from isengard.config import Settings
from isengard.db.models import Job, JobArtifact
from isengard.db.session import session_scope
from isengard.diskspace import InsufficientStorageError, remove_partial_files, require_free_space
from isengard.domain import ArtifactKind, ErrorEvent, JobStatus, StatusEvent, utcnow
from isengard.logging import correlation_id, job_id_var, new_correlation_id
from isengard.plugins.api import JobCancelled, JobInterrupted, Plugin, PluginError
from isengard.plugins.checkpoint_folders import checkpoint_step, latest_checkpoint_in
from isengard.plugins.registry import PluginRegistry, UnknownPluginError
from isengard.queue import events as queue_events
from isengard.queue import jobs as queue
from isengard.queue.history import add_events
from isengard.storage import DataTree
from isengard.worker.context import JobSnapshot, WorkerJobContext, job_work_dir
from isengard.worker.placement import PLUGIN_KIND_OF_JOB, unavailable_reason, workers_able_to_run

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 4000


@dataclass
class CurrentJob:
    """What the heartbeat thread renews (and the watchdog times) while a job runs."""

    job_id: str
    kind: str
    entry_id: str
    started: float = field(default_factory=time.monotonic)
    # Set once the plugin is about to run; the watchdog asks it to stop through this context.
    ctx: WorkerJobContext | None = None


class JobRunner:
    def __init__(
        self,
        *,
        settings: Settings,
        sessions: sessionmaker[Session],
        client: redis.Redis,
        registry: PluginRegistry,
        worker_id: str,
        shutdown: threading.Event,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.redis = client
        self.registry = registry
        self.worker_id = worker_id
        self.shutdown = shutdown
        self.lease_lost = threading.Event()
        self.current: CurrentJob | None = None

    # --- Entry point ------------------------------------------------------------------------------------------------

    def handle(self, entry: queue.ClaimedEntry) -> None:
        """Process one entry to its end: run it, or acknowledge it as nothing left to do."""
        if not entry.job_id:
            queue.ack(self.redis, entry.kind, entry.entry_id)
            return
        # Every log line about the job, from here on, carries the id of the request that created it.
        cid_token = correlation_id.set(self._correlation_id(entry.job_id))
        job_token = job_id_var.set(entry.job_id)
        try:
            self._handle(entry)
        finally:
            correlation_id.reset(cid_token)
            job_id_var.reset(job_token)

    def _correlation_id(self, job_id: str) -> str:
        with self.sessions() as session:
            found = session.scalar(select(Job.correlation_id).where(Job.id == job_id))
        return found or new_correlation_id()

    def _handle(self, entry: queue.ClaimedEntry) -> None:
        if entry.reclaimed:
            log.info("taking over an abandoned job", extra={"job_id": entry.job_id, "entry_id": entry.entry_id})
        if not queue.acquire_lease(self.redis, entry.job_id, self.worker_id, self.settings.lease_seconds):
            self._lease_taken(entry)
            return
        try:
            if self._placed_elsewhere(entry):
                return
            snapshot = self._start(entry)
        except BaseException:
            queue.release_lease(self.redis, entry.job_id, self.worker_id)
            raise
        if snapshot is None:
            queue.ack(self.redis, entry.kind, entry.entry_id)
            queue.release_lease(self.redis, entry.job_id, self.worker_id)
            return
        job, attempt = snapshot
        self.lease_lost.clear()
        self.current = CurrentJob(job_id=job.id, kind=entry.kind, entry_id=entry.entry_id)
        try:
            self._run(entry, job, attempt)
        finally:
            self.current = None

    def _lease_taken(self, entry: queue.ClaimedEntry) -> None:
        holder = queue.lease_holder(self.redis, entry.job_id)
        if holder is None:
            return  # the lease expired in between; the entry is still ours and comes back on the next pass
        if entry.reclaimed:
            # Its worker is alive after all (a late heartbeat): give the entry back rather than run the job twice.
            queue.give_back(self.redis, entry.kind, holder, entry.entry_id)
            log.info("entry returned to the worker holding the lease", extra={"job_id": entry.job_id, "to": holder})
        else:
            # A second entry for a job another worker is running (a re-enqueue raced it): drop the duplicate.
            queue.ack(self.redis, entry.kind, entry.entry_id)
            log.info("duplicate entry dropped", extra={"job_id": entry.job_id, "holder": holder})

    # --- Placement --------------------------------------------------------------------------------------------------

    def _placed_elsewhere(self, entry: queue.ClaimedEntry) -> bool:
        """True when the job's plugin cannot run here: the entry is left for another worker, or the job failed.

        Left means unacknowledged with the lease released: another worker takes the entry over after a lease period
        of idleness (so this is no busy loop). When no live worker can run the plugin and the entry has already
        come back once after such a wait (a capable worker that was starting has had its chance), the job fails
        with the plugin's reason.
        """
        with self.sessions() as session:
            row = session.execute(select(Job.kind, Job.plugin, Job.status).where(Job.id == entry.job_id)).first()
        if row is None or JobStatus(row.status).is_final:
            return False  # nothing to run: the usual path acknowledges the entry
        reason = unavailable_reason(self.registry, row.kind, row.plugin)
        if reason is None:
            return False
        able = workers_able_to_run(self.redis, row.kind, row.plugin, other_than=self.worker_id)
        if able or queue.delivery_count(self.redis, entry.kind, entry.entry_id) < 2:
            queue.release_lease(self.redis, entry.job_id, self.worker_id)
            log.info(
                "plugin unavailable here; entry left for another worker",
                extra={"job_id": entry.job_id, "plugin": row.plugin, "able": able, "reason": reason},
            )
            return True
        error = f"no live worker can run plugin '{row.plugin}': {reason}"[:MAX_ERROR_CHARS]
        events: list[Any] = [
            ErrorEvent(job_id=entry.job_id, message=error),
            StatusEvent(job_id=entry.job_id, status=JobStatus.FAILED, message=error),
        ]
        now = utcnow()
        failed = self._transition(
            (Job.id == entry.job_id, Job.status == row.status),
            {"status": JobStatus.FAILED.value, "error": error, "finished_at": now, "updated_at": now},
            events,
        )
        if failed:
            self._publish_all(events)
            log.warning("no worker can run the job's plugin; job failed", extra={"job_id": entry.job_id})
        self._done_with_entry(entry, entry.job_id)
        return True

    # --- Start ------------------------------------------------------------------------------------------------------

    def _start(self, entry: queue.ClaimedEntry) -> tuple[JobSnapshot, int] | None:
        """Move the row to running; None when there is nothing to run (finished, cancelled, gave up, unknown)."""
        # Each transition is a conditional UPDATE on the status just read: if the API changed the row in between
        # (a cancel), the update matches nothing and the row is read again.
        for _ in range(5):
            outcome = self._try_start(entry)
            if outcome != "retry":
                return outcome  # type: ignore[return-value]
        log.warning("job row kept changing; leaving the entry for later", extra={"job_id": entry.job_id})
        return None

    def _try_start(self, entry: queue.ClaimedEntry) -> tuple[JobSnapshot, int] | str | None:
        with self.sessions() as session:
            job = session.get(Job, entry.job_id)
            if job is None:
                log.warning("entry for a job that does not exist", extra={"job_id": entry.job_id})
                return None
            status = JobStatus(job.status)
            if status.is_final:
                return None
            cancel_requested, attempts, max_attempts = job.cancel_requested, job.attempts, job.max_attempts
            previous_worker = job.worker_id
        now = utcnow()
        terminal: dict[str, Any] | None = None
        events: list[Any] = []
        if cancel_requested:
            terminal = {"status": JobStatus.CANCELLED.value}
            events.append(StatusEvent(job_id=entry.job_id, status=JobStatus.CANCELLED, message="cancelled"))
        elif attempts >= max_attempts:
            error = (
                f"gave up after {attempts} attempts: each attempt stopped its worker (crash or kill) "
                f"before the job finished; last worker: {previous_worker or 'unknown'}"
            )
            terminal = {"status": JobStatus.FAILED.value, "error": error}
            events += [
                ErrorEvent(job_id=entry.job_id, message=error),
                StatusEvent(job_id=entry.job_id, status=JobStatus.FAILED, message=error),
            ]
        if terminal is not None:
            conditions = (Job.id == entry.job_id, Job.status == status.value)
            if not self._transition(conditions, {"finished_at": now, "updated_at": now, **terminal}, events):
                return "retry"
            self._publish_all(events)
            return None
        with session_scope(self.sessions) as session:
            changed = session.execute(
                update(Job)
                .where(Job.id == entry.job_id, Job.status == status.value, Job.cancel_requested.is_(False))
                .values(
                    status=JobStatus.RUNNING.value,
                    attempts=Job.attempts + 1,
                    worker_id=self.worker_id,
                    stream_id=entry.entry_id,
                    started_at=func.coalesce(Job.started_at, now),
                    error=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(changed, "rowcount", 0) != 1:
                return "retry"
            job = session.get(Job, entry.job_id)
            assert job is not None
            snapshot = JobSnapshot(
                id=job.id, kind=job.kind, plugin=job.plugin, character_id=job.character_id, name=job.name
            )
            if job.attempts > 1:
                # What the user sees: where the run picks up, and which attempt this is.
                step = self._resume_step(snapshot)
                where = f"resumed from step {step}" if step else "resumed"
                message = f"{where} (attempt {job.attempts} of {job.max_attempts})"
                if status == JobStatus.RUNNING:
                    message += f" after worker {previous_worker or '?'} was lost"
            else:
                message = f"started on {self.worker_id} (attempt {job.attempts} of {job.max_attempts})"
            started = StatusEvent(job_id=job.id, status=JobStatus.RUNNING, message=message)
            add_events(session, [started])
            attempt = job.attempts
        self._publish_all([started])
        return snapshot, attempt

    def _resume_step(self, job: JobSnapshot) -> int | None:
        latest = latest_checkpoint_in(job_work_dir(DataTree(self.settings.data_path), job))
        return checkpoint_step(latest) if latest is not None else None

    # --- Run --------------------------------------------------------------------------------------------------------

    def _plugin(self, job: JobSnapshot) -> Plugin:
        kind = PLUGIN_KIND_OF_JOB.get(job.kind)
        if kind is None:
            raise PluginError(f"unknown job kind '{job.kind}'")
        try:
            plugin = self.registry.get(kind, job.plugin)
        except UnknownPluginError as exc:
            raise PluginError(f"{exc} on worker {self.worker_id}") from None
        capability = plugin.capabilities()
        if not capability.available:
            raise PluginError(f"plugin '{job.plugin}' cannot run on worker {self.worker_id}: {capability.reason}")
        return plugin

    def _run(self, entry: queue.ClaimedEntry, job: JobSnapshot, attempt: int) -> None:
        ctx = WorkerJobContext(
            settings=self.settings,
            sessions=self.sessions,
            client=self.redis,
            job=job,
            attempt=attempt,
            worker_id=self.worker_id,
            shutdown=self.shutdown,
            lease_lost=self.lease_lost,
        )
        if self.current is not None and self.current.job_id == job.id:
            self.current.ctx = ctx
        log.info("job started", extra={"job_id": job.id, "plugin": job.plugin, "attempt": attempt})
        try:
            payload = self._payload(job.id)
            plugin = self._plugin(job)
            try:
                # A job that starts on a full disk fails now with a clear message, not halfway through a save.
                require_free_space(ctx.data_dir, 0, self.settings.min_free_bytes)
            except InsufficientStorageError as exc:
                raise PluginError(str(exc)) from None
            if attempt > 1:
                # An earlier attempt killed mid-write left temporary files: never results, only wasted space.
                remove_partial_files(ctx.work_dir)
            result = plugin.run(ctx, payload)
        except (JobCancelled, JobInterrupted) as exc:
            ctx.flush()
            if ctx.user_cancelled:
                self._finish(entry, job, JobStatus.CANCELLED, message=self._cancel_message(job.id))
            elif ctx.timed_out:
                error = f"timed out after {self.settings.job_timeout_seconds:.0f} s (ISENGARD_JOB_TIMEOUT_SECONDS)"
                self._finish(entry, job, JobStatus.FAILED, error=error)
            elif self.lease_lost.is_set():
                log.warning("lease lost; another worker owns the job now", extra={"job_id": job.id})
            elif ctx.interrupted:
                self._requeue(entry, job)
            else:
                self._finish(entry, job, JobStatus.FAILED, error=f"the plugin stopped without a request: {exc}")
            return
        except PluginError as exc:
            ctx.flush()
            self._finish(entry, job, JobStatus.FAILED, error=str(exc) or type(exc).__name__)
            return
        except Exception as exc:
            ctx.flush()
            log.error("job failed", extra={"job_id": job.id, "traceback": traceback.format_exc()})
            self._finish(entry, job, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
            return
        ctx.flush()
        if not isinstance(result, dict):
            result = {"value": result}
        self._finish(entry, job, JobStatus.SUCCEEDED, result=result)

    def _payload(self, job_id: str) -> dict[str, Any]:
        with self.sessions() as session:
            job = session.get(Job, job_id)
            return dict(job.payload or {}) if job is not None else {}

    def _cancel_message(self, job_id: str) -> str:
        with self.sessions() as session:
            checkpoint = session.scalars(
                select(JobArtifact)
                .where(JobArtifact.job_id == job_id, JobArtifact.kind == ArtifactKind.CHECKPOINT.value)
                .order_by(JobArtifact.created_at.desc())
                .limit(1)
            ).first()
        if checkpoint is None:
            return "cancelled"
        return f"cancelled; the last checkpoint (step {checkpoint.step}) is kept: {checkpoint.name}"

    # --- Outcomes -----------------------------------------------------------------------------------------------

    def _transition(self, conditions: tuple[Any, ...], values: dict[str, Any], events: list[Any]) -> bool:
        """Update the job row only where `conditions` still hold, and store `events` with it; False when they did not.

        Conditional on the state just read, so a change made in between (a cancel, another worker) is never
        overwritten; the events go to the database in the same transaction, and to Redis only after it.
        """
        with session_scope(self.sessions) as session:
            changed = session.execute(
                update(Job).where(*conditions).values(**values).execution_options(synchronize_session=False)
            )
            applied = getattr(changed, "rowcount", 0) == 1
            if applied:
                add_events(session, events)
        return applied

    def _owned_and_running(self, job_id: str) -> tuple[Any, ...]:
        return (Job.id == job_id, Job.worker_id == self.worker_id, Job.status == JobStatus.RUNNING.value)

    def _publish_all(self, events: list[Any]) -> None:
        for event in events:
            queue_events.publish(self.redis, event, maxlen=self.settings.event_stream_maxlen)

    def _finish(
        self,
        entry: queue.ClaimedEntry,
        job: JobSnapshot,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        message: str | None = None,
    ) -> bool:
        """Record the final state, publish it, ack the entry; False when the row is no longer this worker's."""
        events: list[Any] = []
        if error is not None:
            error = error[:MAX_ERROR_CHARS]
            events.append(ErrorEvent(job_id=job.id, message=error))
        events.append(StatusEvent(job_id=job.id, status=status, message=message or error))
        values: dict[str, Any] = {"status": status.value, "finished_at": utcnow(), "error": error}
        if result is not None:
            values["result"] = result
        # Only the owner finishes the job: after a lost lease another worker's outcome must stand.
        if not self._transition(self._owned_and_running(job.id), values, events):
            log.warning("job row changed hands; outcome not recorded", extra={"job_id": job.id})
            return False
        self._publish_all(events)
        self._done_with_entry(entry, job.id)
        log.info("job finished", extra={"job_id": job.id, "status": status.value, "error": error})
        return True

    def abandon(self, current: CurrentJob, error: str) -> bool:
        """Fail a job whose plugin ignores every request to stop: final row, events, ack, lease released.

        Called from the watchdog while the plugin still runs in the main thread; the caller then ends the process,
        the only way to stop that thread. The update is conditional on the row still running here, so a plugin
        that returned in the meantime keeps its own outcome (and this returns False).
        """
        if self.current is not current or current.ctx is None:
            return False
        entry = queue.ClaimedEntry(kind=current.kind, entry_id=current.entry_id, job_id=current.job_id)
        if not self._finish(entry, current.ctx.job, JobStatus.FAILED, error=error):
            return False
        # Files the plugin was halfway through writing are never results; the process ends before it could.
        with contextlib.suppress(OSError):
            remove_partial_files(current.ctx.work_dir)
        return True

    def _requeue(self, entry: queue.ClaimedEntry, job: JobSnapshot) -> None:
        """Shutdown: the job goes back to queued (this attempt does not count) for another worker to resume."""
        event = StatusEvent(
            job_id=job.id, status=JobStatus.QUEUED, message=f"worker {self.worker_id} stopped; the job will resume"
        )
        requeued = {"status": JobStatus.QUEUED.value, "worker_id": None, "attempts": Job.attempts - 1}
        if not self._transition(self._owned_and_running(job.id), requeued, [event]):
            return
        try:
            new_entry = queue.requeue(self.redis, entry.kind, entry.entry_id, job.id)
            with session_scope(self.sessions) as session:
                session.execute(update(Job).where(Job.id == job.id).values(stream_id=new_entry))
        except redis.RedisError as exc:
            # Unacked, the entry is reclaimed once the lease expires; recovery re-enqueues if Redis lost it.
            log.warning("could not requeue on shutdown", extra={"job_id": job.id, "error": str(exc)})
        finally:
            self._release(job.id)
        self._publish_all([event])
        log.info("job handed back to the queue", extra={"job_id": job.id})

    def _done_with_entry(self, entry: queue.ClaimedEntry, job_id: str) -> None:
        try:
            queue.ack(self.redis, entry.kind, entry.entry_id)
            queue.clear_job_keys(self.redis, job_id)
        except redis.RedisError as exc:
            # The row is final: whoever meets this entry again only acknowledges it.
            log.warning("could not acknowledge a finished job", extra={"job_id": job_id, "error": str(exc)})
        finally:
            self._release(job_id)

    def _release(self, job_id: str) -> None:
        # On a Redis error the lease simply expires on its own.
        with contextlib.suppress(redis.RedisError):
            queue.release_lease(self.redis, job_id, self.worker_id)
