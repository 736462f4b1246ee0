"""Redis is not the source of truth: put back on the queue whatever the database says is outstanding.

- A `queued` job whose entry the stream does not hold is enqueued again (Redis restarted empty, a submission
  that found Redis down, a flush).
- A `running` job with neither a live lease nor an entry (its worker died while Redis lost its data) is enqueued
  again once it has stayed that way for a whole lease, so a worker that is merely re-taking its lease after a
  Redis restart is not doubled.

The API runs `recover` once on start, then `QueueRecovery.run` in the background: it watches a sentinel key and
runs `recover` as soon as Redis answers again without it, plus a sweep every lease period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from isengard.config import Settings
from isengard.db.models import Job
from isengard.db.session import session_scope
from isengard.domain import JobKind, JobStatus, utcnow
from isengard.queue import jobs as queue
from isengard.queue import keys

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
# A job submitted this recently may be between its commit and its XADD; the next sweep looks again.
FRESH_JOB_GRACE_SECONDS = 2.0


class QueueRecovery:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], client: redis.Redis) -> None:
        self.settings = settings
        self.sessions = sessions
        self.redis = client
        # Running jobs seen without lease or entry, and since when (monotonic seconds).
        self._orphans_since: dict[str, float] = {}

    def recover(self, *, grace_seconds: float = 0.0) -> list[str]:
        """One pass; returns the ids of the jobs put back on the queue."""
        for job_kind in JobKind:
            queue.ensure_group(self.redis, job_kind.value)
        held = {kind.value: queue.stream_job_ids(self.redis, kind.value) for kind in JobKind}
        cutoff = utcnow() - timedelta(seconds=grace_seconds)
        with self.sessions() as session:
            rows = session.execute(
                select(Job.id, Job.kind, Job.status, Job.created_at).where(
                    Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value])
                )
            ).all()
        enqueued: list[str] = []
        now = time.monotonic()
        seen_orphans: set[str] = set()
        for job_id, kind, status, created_at in rows:
            if job_id in held.get(kind, {}):
                continue
            if status == JobStatus.QUEUED.value:
                if created_at > cutoff:
                    continue
            else:
                if queue.lease_holder(self.redis, job_id) is not None:
                    continue
                seen_orphans.add(job_id)
                first_seen = self._orphans_since.setdefault(job_id, now)
                if now - first_seen < self.settings.lease_seconds:
                    continue
            enqueued.append(self._enqueue(job_id, kind))
        # Forget orphans that recovered (their worker took the lease back) or were enqueued.
        self._orphans_since = {job_id: since for job_id, since in self._orphans_since.items() if job_id in seen_orphans}
        for job_id in enqueued:
            self._orphans_since.pop(job_id, None)
        self.redis.set(keys.SENTINEL, str(time.time()))
        if enqueued:
            log.info("re-enqueued jobs missing from the queue", extra={"count": len(enqueued), "job_ids": enqueued})
        return enqueued

    def _enqueue(self, job_id: str, kind: str) -> str:
        entry_id = queue.enqueue(self.redis, kind, job_id)
        with session_scope(self.sessions) as session:
            session.execute(update(Job).where(Job.id == job_id).values(stream_id=entry_id))
        return job_id

    async def run(self, stop: asyncio.Event) -> None:
        """Watch Redis; recover when it comes back empty or reachable again, and sweep every lease period."""
        redis_was_down = False
        last_sweep = time.monotonic()
        while not stop.is_set():
            try:
                sentinel = await asyncio.to_thread(self.redis.exists, keys.SENTINEL)
                due = time.monotonic() - last_sweep >= self.settings.lease_seconds
                if not sentinel or redis_was_down or due or self._orphans_since:
                    if not sentinel:
                        log.warning("redis came back without the queue; re-enqueueing from the database")
                    await asyncio.to_thread(self.recover, grace_seconds=FRESH_JOB_GRACE_SECONDS)
                    last_sweep = time.monotonic()
                redis_was_down = False
            except redis.RedisError as exc:
                if not redis_was_down:
                    log.warning("redis unavailable; queue recovery waits for it", extra={"error": str(exc)})
                redis_was_down = True
            except Exception:
                log.exception("queue recovery pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=CHECK_SECONDS)
