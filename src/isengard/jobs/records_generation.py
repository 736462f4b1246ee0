"""What a generation job's output images become in the database: rows of the gallery."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isengard.db.models import Generation, JobArtifact

if TYPE_CHECKING:
    from isengard.jobs.artifacts import JobSnapshot


def record_generation(session: Session, job: JobSnapshot, artifact: JobArtifact) -> Generation:
    """The `generations` row of an output image; its parameters come from the artifact's metadata.

    One row per (job, path): a retried attempt that saves the same image again updates the row it left.
    """
    meta: dict[str, Any] = dict(artifact.meta or {})
    generation = session.scalars(
        select(Generation).where(Generation.job_id == job.id, Generation.path == artifact.path).limit(1)
    ).first()
    if generation is None:
        generation = Generation(job_id=job.id, path=artifact.path)
        session.add(generation)
    generation.character_id = meta.get("character_id", job.character_id)
    generation.thumbnail_path = meta.get("thumbnail_path")
    generation.prompt = str(meta.get("prompt", ""))
    generation.seed = int(meta.get("seed", 0))
    generation.width = int(meta.get("width", 0))
    generation.height = int(meta.get("height", 0))
    generation.steps = int(meta.get("steps", 0))
    generation.guidance = float(meta.get("guidance", 0.0))
    generation.plugin = str(meta.get("plugin", job.plugin))
    generation.loras = list(meta.get("loras", []))
    generation.params = meta
    session.flush()
    return generation
