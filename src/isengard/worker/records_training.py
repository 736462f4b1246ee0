"""What a training job's LoRA and checkpoint artifacts become in the database: rows of the LoRA library."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from isengard.db.models import Job, JobArtifact, Lora
from isengard.domain import ArtifactKind


def record_lora(session: Session, job: Job, artifact: JobArtifact) -> Lora:
    """A `loras` row for a final LoRA (source "trained") or an intermediate checkpoint (source "checkpoint")."""
    meta: dict[str, Any] = dict(artifact.meta or {})
    is_final = artifact.kind == ArtifactKind.LORA
    step = artifact.step if artifact.step is not None else meta.get("step")
    base_name = job.name or f"{job.plugin} {job.id[:8]}"
    lora = Lora(
        character_id=job.character_id,
        job_id=job.id,
        name=base_name if is_final else f"{base_name} · step {step}",
        path=artifact.path,
        source="trained" if is_final else "checkpoint",
        step=step,
        rank=meta.get("rank"),
        alpha=meta.get("alpha"),
        base_model=str(meta.get("base_model", "")),
        trigger_word=meta.get("trigger_word"),
        bytes=artifact.bytes,
        meta=meta,
    )
    session.add(lora)
    session.flush()
    return lora
