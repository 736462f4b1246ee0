"""Storing what scoring found: a job's evaluation setup and each scored image (training sample or rendered image)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from isengard.db.models import Evaluation, SampleScoreRecord
from isengard.db.session import session_scope
from isengard.evaluation.scorer import Setup
from isengard.evaluation.scores import SampleScore


def save_setup(sessions: sessionmaker[Session], job_id: str, setup: Setup) -> None:
    with session_scope(sessions) as session:
        row = session.get(Evaluation, job_id) or Evaluation(job_id=job_id)
        row.identity_evaluator = setup.identity_evaluator
        row.text_evaluator = setup.text_evaluator
        row.choice = "; ".join([setup.choice, *setup.notes]).strip("; ")
        row.unavailable = setup.unavailable
        row.references = setup.references
        row.skipped = setup.skipped
        session.add(row)


def save_failure(sessions: sessionmaker[Session], job_id: str, reason: str) -> None:
    with session_scope(sessions) as session:
        row = session.get(Evaluation, job_id) or Evaluation(job_id=job_id)
        row.unavailable = f"scoring stopped: {reason}"
        session.add(row)


def save_score(
    sessions: sessionmaker[Session], job_id: str, artifact_id: str | None, prompt: str, score: SampleScore
) -> None:
    try:
        with session_scope(sessions) as session:
            session.add(
                SampleScoreRecord(
                    job_id=job_id,
                    artifact_id=artifact_id,
                    step=score.step,
                    index=score.index,
                    prompt=prompt,
                    subject=score.subject,
                    identity=score.identity,
                    adherence=score.adherence,
                    copying=score.copying,
                )
            )
    except IntegrityError:  # scored by an earlier attempt of the job
        pass
