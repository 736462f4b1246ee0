"""What a training job's LoRA and checkpoint artifacts become in the database: rows of the LoRA library."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isengard.db.models import JobArtifact, Lora
from isengard.domain import ArtifactKind
from isengard.models.bases import DEFAULT_BASE, resolve_base_name

if TYPE_CHECKING:
    from isengard.jobs.artifacts import JobSnapshot


def record_lora(session: Session, job: JobSnapshot, artifact: JobArtifact) -> Lora:
    """The `loras` row of a final LoRA (source "trained") or an intermediate checkpoint (source "checkpoint").

    One row per (job, path): a retried attempt that saves the same file again updates the row it left.
    The two rows name each other (`lora_id` in the artifact's meta, `artifact_id` in the LoRA's), so a run's page
    can offer "generate with this" for each checkpoint without matching LoRAs to artifacts by step.
    """
    meta: dict[str, Any] = dict(artifact.meta or {})
    is_final = artifact.kind == ArtifactKind.LORA
    step = artifact.step if artifact.step is not None else meta.get("step")
    base_name = job.name or f"{job.plugin} {job.id[:8]}"
    lora = session.scalars(select(Lora).where(Lora.job_id == job.id, Lora.path == artifact.path).limit(1)).first()
    if lora is None:
        # The name is set once: a person may have renamed the LoRA before the retry saved the file again.
        lora = Lora(job_id=job.id, path=artifact.path, name=base_name if is_final else f"{base_name} step {step}")
        session.add(lora)
    lora.character_id = job.character_id
    lora.source = "trained" if is_final else "checkpoint"
    lora.step = step
    lora.rank = meta.get("rank")
    lora.alpha = meta.get("alpha")
    lora.base_model = str(meta.get("base_model", ""))
    # The trainer names the registry base; an engine that does not (ai-toolkit's files) trained the default one.
    lora.base = str(meta.get("base") or resolve_base_name(str(meta.get("base_model", ""))) or DEFAULT_BASE)
    lora.trigger_word = meta.get("trigger_word")
    lora.bytes = artifact.bytes
    lora.meta = {**meta, "artifact_id": artifact.id}
    session.flush()  # assigns the id of a new row
    artifact.meta = {**meta, "lora_id": lora.id}
    session.flush()
    return lora
