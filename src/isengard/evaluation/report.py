"""A run's evaluation as people read it: every sample's scores, the per-checkpoint table, the recommended checkpoint
and the verdicts. Read from the database only (the API route and `isengard evaluate` show the same thing)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from isengard.db.models import Evaluation, JobArtifact, Lora, SampleScoreRecord
from isengard.domain import ArtifactKind
from isengard.evaluation.recommend import recommend
from isengard.evaluation.scores import SampleScore, aggregate


class SampleScoreOut(BaseModel):
    artifact_id: str | None
    step: int
    index: int
    prompt: str
    subject: str  # ok | no_face | several_faces | unreadable | unscored
    identity: float | None
    adherence: float | None
    copying: float | None


class CheckpointScoresOut(BaseModel):
    step: int
    samples: int
    no_subject: int
    unreadable: int
    identity: float | None
    adherence: float | None
    copying: float | None
    recommended: bool
    within_margins: bool
    checkpoint_artifact_id: str | None = None  # the checkpoint (or final LoRA) file saved at this step
    lora_id: str | None = None  # its row in the LoRA library


class VerdictOut(BaseModel):
    code: str
    message: str
    step: int | None = None


class RunEvaluation(BaseModel):
    job_id: str
    # available: identity scores exist; not_available: `reason` says why; pending: no sample scored yet.
    status: Literal["available", "not_available", "pending"]
    reason: str | None = None
    identity_evaluator: str | None = None
    text_evaluator: str | None = None
    choice: str = ""
    references: int = 0
    skipped_references: int = 0
    recommended_step: int | None = None
    recommended_lora_id: str | None = None
    adherence_margin: float
    copying_margin: float
    checkpoints: list[CheckpointScoresOut]
    verdicts: list[VerdictOut]
    samples: list[SampleScoreOut]


def run_evaluation(session: Session, job_id: str) -> RunEvaluation:
    setup = session.get(Evaluation, job_id)
    rows = session.scalars(
        select(SampleScoreRecord)
        .where(SampleScoreRecord.job_id == job_id)
        .order_by(SampleScoreRecord.step, SampleScoreRecord.index)
    ).all()
    samples = [
        SampleScoreOut(
            artifact_id=row.artifact_id,
            step=row.step,
            index=row.index,
            prompt=row.prompt,
            subject=row.subject,
            identity=row.identity,
            adherence=row.adherence,
            copying=row.copying,
        )
        for row in rows
    ]
    table = aggregate(SampleScore(s.step, s.index, s.subject, s.identity, s.adherence, s.copying) for s in samples)
    rec = recommend(table)
    saved = _saved_at_steps(session, job_id)
    loras = {
        lora.step: lora.id
        for lora in session.scalars(select(Lora).where(Lora.job_id == job_id)).all()
        if lora.step is not None
    }
    checkpoints = [
        CheckpointScoresOut(
            step=row.step,
            samples=row.samples,
            no_subject=row.no_subject,
            unreadable=row.unreadable,
            identity=row.identity,
            adherence=row.adherence,
            copying=row.copying,
            recommended=row.step == rec.step,
            within_margins=row.step in rec.eligible,
            checkpoint_artifact_id=saved.get(row.step),
            lora_id=loras.get(row.step),
        )
        for row in table
    ]
    unavailable = setup.unavailable if setup is not None else None
    if rec.step is not None:
        status: Literal["available", "not_available", "pending"] = "available"
    elif unavailable:
        status = "not_available"
    else:
        status = "pending" if not samples else "not_available"
    verdicts = [VerdictOut(code=v.code, message=v.message, step=v.step) for v in rec.verdicts]
    if status != "available":
        verdicts = [v for v in verdicts if v.code != "not_available"]
    return RunEvaluation(
        job_id=job_id,
        status=status,
        reason=unavailable if status != "available" else None,
        identity_evaluator=setup.identity_evaluator if setup else None,
        text_evaluator=setup.text_evaluator if setup else None,
        choice=setup.choice if setup else "",
        references=setup.references if setup else 0,
        skipped_references=setup.skipped if setup else 0,
        recommended_step=rec.step,
        recommended_lora_id=loras.get(rec.step) if rec.step is not None else None,
        adherence_margin=rec.adherence_margin,
        copying_margin=rec.copying_margin,
        checkpoints=checkpoints,
        verdicts=verdicts,
        samples=samples,
    )


def _saved_at_steps(session: Session, job_id: str) -> dict[int, str]:
    """Step -> the artifact saved at it: the final LoRA wins over a checkpoint of the same step."""
    found: dict[int, str] = {}
    artifacts = session.scalars(
        select(JobArtifact).where(
            JobArtifact.job_id == job_id,
            JobArtifact.kind.in_([ArtifactKind.CHECKPOINT.value, ArtifactKind.LORA.value]),
        )
    ).all()
    for artifact in sorted(artifacts, key=lambda a: a.kind == ArtifactKind.LORA.value):
        if artifact.step is not None:
            found[artifact.step] = artifact.id
    return found
