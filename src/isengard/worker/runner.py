"""Runs one claimed queue entry: the job row read once, lease, placement, the plugin, the final state, the ack.

"Never run twice" rests on the lease and on conditional updates: a job another worker holds a live lease on is left
to it, and every change of the row (`isengard.jobs.states`) applies only if the row is still as it was read, so a
row that changed since (another worker finished it, the API cancelled it) is read again, never overwritten. A job
the database already finished is only acknowledged. This module does the Redis side (lease, entry) and runs the
plugin.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from isengard.config import Settings
from isengard.db.models import JobArtifact
from isengard.diskspace import InsufficientStorageError, remove_partial_files, require_free_space
from isengard.domain import PLUGIN_KIND_OF_JOB, ArtifactKind, JobKind, JobStatus, TrainingInput
from isengard.evaluation.lora_job import run_lora_evaluation
from isengard.evaluation.scorer import RunScorer
from isengard.jobs.artifacts import JobSnapshot
from isengard.jobs.rows import JobRow, NothingToRun, RowChanged, Started
from isengard.jobs.speeds import RESULT_KEY as SPEED_KEY
from isengard.jobs.states import JobStates
from isengard.logging import correlation_id, job_id_var, new_correlation_id
from isengard.plugins.api import JobCancelled, JobInterrupted, Plugin, PluginError
from isengard.plugins.checkpoint_folders import checkpoint_step, latest_checkpoint_in
from isengard.plugins.registry import PluginRegistry, UnknownPluginError
from isengard.queue import jobs as queue
from isengard.storage import DataTree
from isengard.worker.context import WorkerJobContext, job_work_dir
from isengard.worker.placement import unavailable_reason, workers_able_to_run
from isengard.worker.scoring import SampleScoring
from isengard.worker.speed import run_speed

log = logging.getLogger(__name__)

START_TRIES = 5


class Placement(Enum):
    HERE = "here"
    ELSEWHERE = "elsewhere"  # left to another worker, or already settled by one
    NOWHERE = "nowhere"  # no live worker can run the plugin: this worker failed the job


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
        self.states = JobStates(sessions, client, event_maxlen=settings.event_stream_maxlen)
        self.lease_lost = threading.Event()
        self.current: CurrentJob | None = None
        # Jobs this worker moved to failed: a burst run that failed any exits non-zero.
        self.jobs_failed = 0

    # --- Entry point ------------------------------------------------------------------------------------------------

    def handle(self, entry: queue.ClaimedEntry) -> JobStatus | None:
        """Process one entry to its end; returns the final status this worker recorded, if it recorded one."""
        if not entry.job_id:
            queue.ack(self.redis, entry.kind, entry.entry_id)
            return None
        row = self.states.read(entry.job_id)  # the claim's one read of the row
        job_token = job_id_var.set(entry.job_id)
        # Every log line about the job, from here on, carries the id of the request that created it.
        cid_token = correlation_id.set((row.correlation_id if row else None) or new_correlation_id())
        try:
            status = self._handle(entry, row)
        finally:
            correlation_id.reset(cid_token)
            job_id_var.reset(job_token)
        if status == JobStatus.FAILED:
            self.jobs_failed += 1
        return status

    def _handle(self, entry: queue.ClaimedEntry, row: JobRow | None) -> JobStatus | None:
        if entry.reclaimed:
            log.info("taking over an abandoned job", extra={"job_id": entry.job_id, "entry_id": entry.entry_id})
        if not queue.acquire_lease(self.redis, entry.job_id, self.worker_id, self.settings.lease_seconds):
            self._lease_taken(entry)
            return None
        try:
            placement = self._placement(entry, row) if row is not None else Placement.HERE
            if placement != Placement.HERE:
                return JobStatus.FAILED if placement == Placement.NOWHERE else None
            started = self._start(entry, row)
        except BaseException:
            self._release(entry.job_id)
            raise
        if not isinstance(started, Started):
            queue.ack(self.redis, entry.kind, entry.entry_id)
            self._release(entry.job_id)
            return started.recorded
        self.lease_lost.clear()
        self.current = CurrentJob(job_id=started.job.id, kind=entry.kind, entry_id=entry.entry_id)
        try:
            return self._run(entry, started.job, started.attempt)
        finally:
            self.current = None

    def _lease_taken(self, entry: queue.ClaimedEntry) -> None:
        holder = queue.lease_holder(self.redis, entry.job_id)
        if holder is None:
            return  # the lease expired in between; the entry is still ours and comes back on the next pass
        if entry.reclaimed:
            # Its worker is alive after all (a late heartbeat): give the entry back rather than run the job twice.
            queue.touch(self.redis, entry.kind, holder, entry.entry_id)
            log.info("entry returned to the worker holding the lease", extra={"job_id": entry.job_id, "to": holder})
        else:
            # A second entry for a job another worker is running (a re-enqueue raced it): drop the duplicate.
            queue.ack(self.redis, entry.kind, entry.entry_id)
            log.info("duplicate entry dropped", extra={"job_id": entry.job_id, "holder": holder})

    # --- Placement --------------------------------------------------------------------------------------------------

    def _placement(self, entry: queue.ClaimedEntry, row: JobRow) -> Placement:
        """Whether the job runs here; when its plugin cannot, the entry is left for another worker, or the job fails.

        Left means unacknowledged with the lease released: another worker takes the entry over after a lease period
        of idleness (so this is no busy loop). When no live worker can run the plugin and the entry has already
        come back once after such a wait (a capable worker that was starting has had its chance), the job fails
        with the plugin's reason.
        """
        if row.status.is_final:
            return Placement.HERE  # nothing to run: the usual path acknowledges the entry
        reason = unavailable_reason(self.registry, row.kind, row.plugin)
        if reason is None:
            return Placement.HERE
        able = workers_able_to_run(self.redis, row.kind, row.plugin, other_than=self.worker_id)
        if able or queue.delivery_count(self.redis, entry.kind, entry.entry_id) < 2:
            self._release(entry.job_id)
            log.info(
                "plugin unavailable here; entry left for another worker",
                extra={"job_id": entry.job_id, "plugin": row.plugin, "able": able, "reason": reason},
            )
            return Placement.ELSEWHERE
        failed = self.states.fail_unplaceable(row, f"no live worker can run plugin '{row.plugin}': {reason}")
        if failed:
            log.warning("no worker can run the job's plugin; job failed", extra={"job_id": entry.job_id})
        self._done_with_entry(entry, entry.job_id)
        return Placement.NOWHERE if failed else Placement.ELSEWHERE

    # --- Start ------------------------------------------------------------------------------------------------------

    def _start(self, entry: queue.ClaimedEntry, row: JobRow | None) -> Started | NothingToRun:
        """Move the row to running, or learn there is nothing to run (finished, cancelled, gave up, unknown)."""
        for _ in range(START_TRIES):
            if row is None:
                log.warning("entry for a job that does not exist", extra={"job_id": entry.job_id})
                return NothingToRun("no such job")
            outcome = self.states.start(
                row, worker_id=self.worker_id, entry_id=entry.entry_id, resume_step=self._resume_step(row)
            )
            if not isinstance(outcome, RowChanged):
                return outcome
            # The API changed the row in between (a cancel): read it again.
            row = self.states.read(entry.job_id)
        log.warning("job row kept changing; leaving the entry for later", extra={"job_id": entry.job_id})
        return NothingToRun("row kept changing")

    def _resume_step(self, row: JobRow) -> int | None:
        """The step a new attempt continues from: the newest complete checkpoint in the job's folder."""
        if row.attempts == 0:
            return None
        job = JobSnapshot(id=row.id, kind=row.kind, plugin=row.plugin, character_id=row.character_id, name=row.name)
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
        # Models kept by other plugins since their last job would share the GPU with this one's: let them go.
        for other in self.registry.instances():
            if other is plugin:
                continue
            try:
                other.release_memory()
            except Exception:  # another plugin's failure to let go is not this job's failure
                log.exception("a plugin could not release its model", extra={"plugin": other.name})
        return plugin

    def _run(self, entry: queue.ClaimedEntry, row: JobRow, attempt: int) -> JobStatus | None:
        job = JobSnapshot(id=row.id, kind=row.kind, plugin=row.plugin, character_id=row.character_id, name=row.name)
        ctx = WorkerJobContext(
            settings=self.settings,
            states=self.states,
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
            plugin = self._plugin(job)
            try:
                # A job that starts on a full disk fails now with a clear message, not halfway through a save.
                require_free_space(ctx.data_dir, 0, self.settings.min_free_bytes)
            except InsufficientStorageError as exc:
                raise PluginError(str(exc)) from None
            if attempt > 1:
                # An earlier attempt killed mid-write left temporary files: never results, only wasted space.
                remove_partial_files(ctx.work_dir)
            ctx.scoring = self._sample_scoring(job, row, ctx)
            try:
                if job.kind == JobKind.EVALUATION:
                    result = run_lora_evaluation(ctx, plugin, row.payload, self.registry, self.sessions)
                else:
                    result = plugin.run(ctx, row.payload)
            except BaseException:
                ctx.close_scoring(drain=False)
                raise
            ctx.close_scoring(drain=True)
        except (JobCancelled, JobInterrupted) as exc:
            ctx.flush()
            if ctx.user_cancelled:
                return self._finish(entry, job.id, JobStatus.CANCELLED, message=self._cancel_message(job.id))
            if ctx.timed_out:
                error = f"timed out after {self.settings.job_timeout_seconds:.0f} s (ISENGARD_JOB_TIMEOUT_SECONDS)"
                return self._finish(entry, job.id, JobStatus.FAILED, error=error)
            if self.lease_lost.is_set():
                log.warning("lease lost; another worker owns the job now", extra={"job_id": job.id})
                return None
            if ctx.interrupted:
                self._requeue(entry, job.id)
                return None
            return self._finish(entry, job.id, JobStatus.FAILED, error=f"the plugin stopped without a request: {exc}")
        except PluginError as exc:
            ctx.flush()
            return self._finish(entry, job.id, JobStatus.FAILED, error=str(exc) or type(exc).__name__)
        except Exception as exc:
            ctx.flush()
            log.error("job failed", extra={"job_id": job.id, "traceback": traceback.format_exc()})
            return self._finish(entry, job.id, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        ctx.flush()
        if not isinstance(result, dict):
            result = {"value": result}
        speed = run_speed(plugin, row.payload, ctx.seconds_per_step, ctx.mode)
        if speed is not None:
            result = {**result, SPEED_KEY: speed}
        return self._finish(entry, job.id, JobStatus.SUCCEEDED, result=result)

    def _sample_scoring(self, job: JobSnapshot, row: JobRow, ctx: WorkerJobContext) -> SampleScoring | None:
        """A training run's scoring thread, scoring against the run's dataset snapshot."""
        if job.kind != JobKind.TRAINING or not self.settings.score_samples:
            return None
        try:
            training = TrainingInput.model_validate(row.payload.get("input") or {})
        except ValueError:
            return None
        references = [ctx.data_dir / item.image_path for item in training.dataset]

        def make_scorer() -> RunScorer:
            return RunScorer(self.registry, self.sessions, references, training.trigger_word)

        return SampleScoring(job.id, self.sessions, make_scorer, ctx.log)

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

    def _finish(
        self,
        entry: queue.ClaimedEntry,
        job_id: str,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        message: str | None = None,
    ) -> JobStatus | None:
        """Record the final state and ack the entry; None when the row is no longer this worker's."""
        recorded = self.states.finish(
            job_id, worker_id=self.worker_id, status=status, result=result, error=error, message=message
        )
        if not recorded:
            log.warning("job row changed hands; outcome not recorded", extra={"job_id": job_id})
            return None
        self._done_with_entry(entry, job_id)
        log.info("job finished", extra={"job_id": job_id, "status": status.value, "error": error})
        return status

    def abandon(self, current: CurrentJob, error: str) -> bool:
        """Fail a job whose plugin ignores every request to stop: final row, events, ack, lease released.

        Called from the watchdog while the plugin still runs in the main thread; the caller then ends the process,
        the only way to stop that thread. The update is conditional on the row still running here, so a plugin
        that returned in the meantime keeps its own outcome (and this returns False).
        """
        if self.current is not current or current.ctx is None:
            return False
        entry = queue.ClaimedEntry(kind=current.kind, entry_id=current.entry_id, job_id=current.job_id)
        if self._finish(entry, current.job_id, JobStatus.FAILED, error=error) is None:
            return False
        # Files the plugin was halfway through writing are never results; the process ends before it could.
        with contextlib.suppress(OSError):
            remove_partial_files(current.ctx.work_dir)
        return True

    def _requeue(self, entry: queue.ClaimedEntry, job_id: str) -> None:
        """Shutdown: the job goes back to the queue for another worker to resume."""
        try:
            if self.states.requeue(job_id, worker_id=self.worker_id, kind=entry.kind, entry_id=entry.entry_id):
                log.info("job handed back to the queue", extra={"job_id": job_id})
        finally:
            self._release(job_id)

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
