"""What a generation job's output images become in the database: rows of the gallery."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from isengard.db.models import Generation, Job, JobArtifact


def record_generation(session: Session, job: Job, artifact: JobArtifact) -> Generation:
    """A `generations` row from an output image; its parameters come from the artifact's metadata."""
    meta: dict[str, Any] = dict(artifact.meta or {})
    generation = Generation(
        job_id=job.id,
        character_id=meta.get("character_id", job.character_id),
        path=artifact.path,
        thumbnail_path=meta.get("thumbnail_path"),
        prompt=str(meta.get("prompt", "")),
        seed=int(meta.get("seed", 0)),
        width=int(meta.get("width", 0)),
        height=int(meta.get("height", 0)),
        steps=int(meta.get("steps", 0)),
        guidance=float(meta.get("guidance", 0.0)),
        plugin=str(meta.get("plugin", job.plugin)),
        loras=list(meta.get("loras", [])),
        params=meta,
    )
    session.add(generation)
    session.flush()
    return generation
