"""What a person can do with a job that has ended: resume a run from its last checkpoint, or delete any job.

Resuming is a new attempt of the same run (same id, same loss curve), not a new run: the job goes back to the
queue and the trainer continues from the newest complete checkpoint its folder holds, as after a lost worker.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from fastapi import HTTPException
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from isengard.api.services.bases import ensure_base_installed
from isengard.api.services.jobs.manage import get_job
from isengard.api.services.jobs.run_images import missing_images
from isengard.api.services.loras.library import jobs_using
from isengard.api.state import Services
from isengard.db.models import (
    Evaluation,
    Generation,
    Job,
    JobArtifact,
    JobEventRecord,
    Lora,
    SampleScoreRecord,
)
from isengard.domain import JobKind, JobStatus
from isengard.jobs import states
from isengard.jobs.artifacts import JobSnapshot
from isengard.plugins.checkpoint_folders import checkpoint_step, latest_checkpoint_in
from isengard.storage import DataTree
from isengard.worker.context import job_work_dir

log = logging.getLogger(__name__)

RESUMABLE = (JobStatus.CANCELLED.value, JobStatus.FAILED.value)


def _work_dir(data: DataTree, job: Job) -> Path:
    snapshot = JobSnapshot(id=job.id, kind=job.kind, plugin=job.plugin, character_id=job.character_id, name=job.name)
    return job_work_dir(data, snapshot)


def _training_run(session: Session, job_id: str) -> Job:
    job = get_job(session, job_id)
    if job.kind != JobKind.TRAINING.value:
        raise HTTPException(status_code=422, detail=f"job {job_id} is a {job.kind} job, not a training run")
    return job


def resume_job(services: Services, session: Session, job_id: str) -> Job:
    """Queue a cancelled or failed run again from its newest complete checkpoint."""
    job = _training_run(session, job_id)
    if job.status not in RESUMABLE:
        raise HTTPException(status_code=409, detail=f"the run is {job.status}: only a cancelled or failed run resumes")
    checkpoint = latest_checkpoint_in(_work_dir(services.data, job))
    step = checkpoint_step(checkpoint) if checkpoint is not None else None
    if step is None:
        raise HTTPException(status_code=409, detail="the run saved no checkpoint to resume from: start it again")
    if job.base:
        ensure_base_installed(services.settings, job.base, what="resuming this run")
    missing = missing_images(services.data.root, job)
    if missing:
        raise HTTPException(
            status_code=409,
            detail=f"{len(missing)} of the run's images were deleted since it stopped (first: {Path(missing[0]).name}):"
            " start a new run on the images the character has now",
        )
    try:
        resumed = states.resume(
            session,
            services.redis,
            job,
            step=step,
            event_maxlen=services.settings.event_stream_maxlen,
        )
    except states.NotResumableError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    log.info("run resumed", extra={"job_id": job_id, "step": step})
    return resumed


def delete_job(services: Services, session: Session, job_id: str) -> None:
    """A job that has ended, with its history, artifacts and folder: a training run's LoRAs go with it (the images
    generated with them stay), a generation's images go with it; the captions a caption job wrote stay."""
    job = get_job(session, job_id)
    if not JobStatus(job.status).is_final:
        raise HTTPException(status_code=409, detail=f"the job is {job.status}: cancel it before deleting it")
    loras = list(session.query(Lora).filter(Lora.job_id == job_id))
    for lora in loras:
        users = [user for user in jobs_using(session, lora) if user.id != job_id]
        if users:
            raise HTTPException(
                status_code=409,
                detail=f"its LoRA '{lora.name}' is used by {users[0].kind} job '{users[0].name}' ({users[0].status})",
            )
    folder = _work_dir(services.data, job)
    # Explicit deletes: the schema cascades too, but not every database enforces foreign keys the same way.
    if job.kind == JobKind.GENERATION.value:
        # Its images live in its folder: their gallery rows go with them.
        session.execute(delete(Generation).where(Generation.job_id == job_id))
    else:
        session.execute(update(Generation).where(Generation.job_id == job_id).values(job_id=None))
    session.execute(delete(Lora).where(Lora.job_id == job_id))
    session.execute(delete(SampleScoreRecord).where(SampleScoreRecord.job_id == job_id))
    session.execute(delete(Evaluation).where(Evaluation.job_id == job_id))
    session.execute(delete(JobArtifact).where(JobArtifact.job_id == job_id))
    session.execute(delete(JobEventRecord).where(JobEventRecord.job_id == job_id))
    # Only while it is still ended: a resume that won the race has queued it again, and then nothing is deleted
    # (one answer: the resume's), rather than a queued job vanishing under its queue entry.
    final = [status.value for status in JobStatus if status.is_final]
    deleted = session.execute(delete(Job).where(Job.id == job_id, Job.status.in_(final)))
    if getattr(deleted, "rowcount", 1) != 1:
        session.rollback()
        raise HTTPException(status_code=409, detail="the job changed meanwhile (resumed?): reload it")
    session.commit()
    # Files after the rows: a crash in between leaves an unreferenced folder, never rows pointing at nothing.
    shutil.rmtree(folder, ignore_errors=True)
    log.info("job deleted", extra={"job_id": job_id, "kind": job.kind, "loras": len(loras)})
