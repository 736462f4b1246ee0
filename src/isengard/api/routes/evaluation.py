"""A training run's evaluation: every sample's scores, per-checkpoint aggregates, the recommended checkpoint and
the verdicts."""

from __future__ import annotations

from fastapi import APIRouter

from isengard.api.deps import DbSession
from isengard.api.services.jobs import manage as jobs
from isengard.evaluation.report import RunEvaluation, run_evaluation

router = APIRouter(tags=["evaluation"])


@router.get("/jobs/{job_id}/evaluation", response_model=RunEvaluation)
def get_run_evaluation(job_id: str, db: DbSession) -> RunEvaluation:
    jobs.get_job(db, job_id)  # 404 for an unknown job
    return run_evaluation(db, job_id)
