"""Where a queued job stands: its place in the queue of its kind, and when it should start.

The estimate replays the queue on the live workers: each worker takes, in queue order, the next job of a kind it
runs as soon as it is free; a running job frees its worker after its reported ETA, a queued one holds it for the
typical duration of its kind and plugin (the median of recent finished jobs; for training, per step, times the
run's steps). Where a duration is unknown (no finished job to learn from) so is every start that waits on it: an
honest "unknown" beats a made-up time.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isengard.db.models import Job
from isengard.domain import JobKind, JobStatus, utcnow

RECENT_JOBS = 10  # finished jobs of a kind and plugin whose median duration is the typical one
MAX_QUEUED = 500  # queued jobs replayed at most; those further back get a position but no estimate


@dataclass(frozen=True)
class Waiting:
    """A queued job's place (1 = next of its kind) and how many seconds from now it should start (None: unknown)."""

    position: int
    starts_in_seconds: float | None
    note: str | None = None


@dataclass
class WorkerSlot:
    """A live worker as the replay sees it: the job kinds it runs and in how many seconds it is free."""

    kinds: frozenset[str]
    free_in: float | None = 0.0  # None: busy for an unknown time
    plugins: dict[str, list[str]] = field(default_factory=dict)

    def runs(self, kind: str, plugin: str) -> bool:
        if kind not in self.kinds:
            return False
        offered = self.plugins.get(kind)
        return offered is None or plugin in offered


def queue_order(job: Job) -> tuple[int, int, datetime]:
    """Stream ids ("<ms>-<seq>") order the entries as the queue holds them; a resumed run is back at the end."""
    if job.stream_id and "-" in job.stream_id:
        ms, _, seq = job.stream_id.partition("-")
        if ms.isdigit() and seq.isdigit():
            return (0, int(ms), job.created_at)
    # Not on the stream yet (Redis was down): the recovery task enqueues it after those that are.
    return (1, 0, job.created_at)


class TypicalDurations:
    """Median durations of recently finished jobs, looked up once per (kind, plugin) for one listing."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._cache: dict[tuple[str, str], list[tuple[float, int | None]]] = {}

    def _recent(self, kind: str, plugin: str) -> list[tuple[float, int | None]]:
        key = (kind, plugin)
        if key not in self._cache:
            rows = self.session.execute(
                select(Job.started_at, Job.finished_at, Job.config)
                .where(Job.kind == kind, Job.plugin == plugin, Job.status == JobStatus.SUCCEEDED.value)
                .order_by(Job.finished_at.desc())
                .limit(RECENT_JOBS)
            ).all()
            self._cache[key] = [
                (max(0.0, (finished - started).total_seconds()), _steps(config))
                for started, finished, config in rows
                if started is not None and finished is not None
            ]
        return self._cache[key]

    def seconds(self, kind: str, plugin: str, config: dict[str, Any] | None) -> float | None:
        recent = self._recent(kind, plugin)
        if not recent:
            return None
        steps = _steps(config)
        per_step = [seconds / count for seconds, count in recent if count]
        if kind == JobKind.TRAINING.value and steps and per_step:
            return statistics.median(per_step) * steps
        return statistics.median(seconds for seconds, _ in recent)


def _steps(config: dict[str, Any] | None) -> int | None:
    steps = (config or {}).get("steps")
    return steps if isinstance(steps, int) and steps > 0 else None


def remaining_seconds(job: Job, durations: TypicalDurations, now: datetime) -> float | None:
    """How long a running job still needs: its reported ETA, else its typical duration less the time it has run."""
    eta = (job.progress or {}).get("eta_seconds")
    if isinstance(eta, int | float) and eta >= 0:
        return float(eta)
    typical = durations.seconds(job.kind, job.plugin, job.config)
    if typical is None:
        return None
    ran = (now - job.started_at).total_seconds() if job.started_at is not None else 0.0
    return max(0.0, typical - ran)


def replay(
    queued: Sequence[tuple[Job, float | None]], workers: list[WorkerSlot]
) -> dict[str, tuple[float | None, str | None]]:
    """Each queued job's start in seconds (None: unknown) and a note when no worker can ever take it.

    `queued` is in queue order, each with its typical duration; `workers` start as free as their current job lets
    them, and are updated as the replay hands them jobs."""
    starts: dict[str, tuple[float | None, str | None]] = {}
    for job, duration in queued:
        able = [worker for worker in workers if worker.runs(job.kind, job.plugin)]
        if not able:
            starts[job.id] = (None, f"no live worker runs {job.kind} jobs with '{job.plugin}'")
            continue
        known = [worker for worker in able if worker.free_in is not None]
        if not known:
            starts[job.id] = (None, None)
            continue
        worker = min(known, key=lambda w: w.free_in if w.free_in is not None else 0.0)
        start = worker.free_in or 0.0
        starts[job.id] = (start, None)
        worker.free_in = None if duration is None else start + duration
    return starts


def waiting_jobs(session: Session, worker_records: Iterable[dict[str, Any]]) -> dict[str, Waiting]:
    """Every queued job's place and estimated start, from the database and the live workers' heartbeats."""
    now = utcnow()
    durations = TypicalDurations(session)
    oldest_first = select(Job).where(Job.status == JobStatus.QUEUED.value).order_by(Job.created_at)
    queued = sorted(session.scalars(oldest_first.limit(MAX_QUEUED)).all(), key=queue_order)
    running = {job.id: job for job in session.scalars(select(Job).where(Job.status == JobStatus.RUNNING.value)).all()}
    workers: list[WorkerSlot] = []
    for record in worker_records:
        if record.get("state") == "stopping":
            continue
        current = running.get(str(record.get("current_job")))
        free_in = remaining_seconds(current, durations, now) if current is not None else 0.0
        plugins = record.get("plugins")
        workers.append(
            WorkerSlot(
                kinds=frozenset(str(kind) for kind in record.get("kinds") or []),
                free_in=free_in,
                plugins=plugins if isinstance(plugins, dict) else {},
            )
        )
    starts = replay([(job, durations.seconds(job.kind, job.plugin, job.config)) for job in queued], workers)
    positions: dict[str, int] = {}
    waiting: dict[str, Waiting] = {}
    for job in queued:
        positions[job.kind] = positions.get(job.kind, 0) + 1
        start, note = starts[job.id]
        waiting[job.id] = Waiting(position=positions[job.kind], starts_in_seconds=start, note=note)
    return waiting
