"""A training run's evaluation: every sample's scores, per-checkpoint aggregates, the recommended checkpoint and
the verdicts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from isengard.api.deps import DbSession, ServicesDep
from isengard.api.ratelimit import rate_limited
from isengard.api.schemas.evaluation import LoraEvaluationCreate
from isengard.api.schemas.jobs import JobOut
from isengard.api.services.evaluation import submit_lora_evaluation
from isengard.api.services.jobs import manage as jobs
from isengard.api.support.params import path_id
from isengard.evaluation.report import RunEvaluation, run_evaluation

router = APIRouter(tags=["evaluation"])


@router.get("/jobs/{job_id}/evaluation", response_model=RunEvaluation)
def get_run_evaluation(job_id: Annotated[str, path_id("job")], db: DbSession) -> RunEvaluation:
    jobs.get_job(db, job_id)  # 404 for an unknown job
    return run_evaluation(db, job_id)


@router.post("/loras/{lora_id}/evaluation", status_code=202, dependencies=[Depends(rate_limited("generation"))])
def evaluate_lora(
    services: ServicesDep, db: DbSession, lora_id: Annotated[str, path_id("LoRA")], body: LoraEvaluationCreate
) -> JobOut:
    """Queue an evaluation job: the LoRA renders fixed prompts x seeds, each scored against the character's photos;
    the scores are then at GET /api/jobs/{job_id}/evaluation."""
    return JobOut.from_row(submit_lora_evaluation(services, db, lora_id, body))
