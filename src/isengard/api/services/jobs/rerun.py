"""Run a job again: a new job with the settings of one that has ended, whatever its kind.

A training run is submitted afresh through the training service: same plugin and settings, a new run number, and
the character's dataset as it is now (the photos may have been edited or captioned since, and a new run should
train on that). Other jobs repeat their inputs exactly, once it is checked that what they name (LoRAs, images)
still exists.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session

from isengard.api.schemas.training import TrainingCreate
from isengard.api.services.jobs.availability import ensure_runnable
from isengard.api.services.jobs.manage import get_job, submit_job
from isengard.api.services.training.runs import submit_training
from isengard.api.state import Services
from isengard.db.models import Image, Job, Lora
from isengard.domain import PLUGIN_KIND_OF_JOB, JobKind, JobStatus
from isengard.jobs.states import Submission

log = logging.getLogger(__name__)


def _lora_ids(payload: dict[str, Any]) -> list[str]:
    """The LoRAs a generation payload names: its own list, and each comparison-grid column's."""
    selections = list(payload.get("loras") or [])
    for column in (payload.get("grid") or {}).get("columns") or []:
        selections += column.get("loras") or []
    return [str(item["lora_id"]) for item in selections if isinstance(item, dict) and item.get("lora_id")]


def _ensure_inputs_exist(session: Session, job: Job) -> None:
    payload = job.payload or {}
    if job.kind == JobKind.GENERATION.value:
        wanted = set(_lora_ids(payload))
        found = set(session.scalars(select(Lora.id).where(Lora.id.in_(wanted)))) if wanted else set()
        if wanted - found:
            raise HTTPException(status_code=409, detail="a LoRA this job used has been deleted since: it cannot rerun")
    elif job.kind == JobKind.CAPTION.value:
        wanted = {str(item.get("image_id")) for item in payload.get("images") or [] if isinstance(item, dict)}
        found = set(session.scalars(select(Image.id).where(Image.id.in_(wanted)))) if wanted else set()
        if wanted - found:
            raise HTTPException(
                status_code=409,
                detail=f"{len(wanted - found)} of its images have been deleted since: start a new caption job",
            )


def rerun_job(services: Services, session: Session, job_id: str) -> Job:
    """A new queued job with the settings of `job_id`, which must have ended."""
    job = get_job(session, job_id)
    if not JobStatus(job.status).is_final:
        raise HTTPException(status_code=409, detail=f"the job is {job.status}: it can run again once it has ended")
    if job.kind == JobKind.TRAINING.value:
        if job.character_id is None:
            raise HTTPException(status_code=409, detail="the run's character has been deleted: it cannot rerun")
        body = TrainingCreate(character_id=job.character_id, plugin=job.plugin, config=dict(job.config or {}))
        rerun = submit_training(services, session, body)
    else:
        ensure_runnable(services, PLUGIN_KIND_OF_JOB[job.kind], job.plugin)
        _ensure_inputs_exist(session, job)
        submission = Submission(
            JobKind(job.kind),
            job.plugin,
            dict(job.payload or {}),
            dict(job.config or {}),
            job.name,
            character_id=job.character_id,
            base=job.base,
        )
        rerun = submit_job(services, session, submission)
    log.info("job rerun", extra={"job_id": rerun.id, "rerun_of": job_id, "kind": job.kind})
    return rerun
