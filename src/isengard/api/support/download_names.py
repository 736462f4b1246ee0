"""File names for downloads (`Content-Disposition`): what a person sees in their downloads folder.

`ada_lovelace-run3-step1500.safetensors` for a run's LoRA, `ada_lovelace-run3-sample-000500-0.png` for its
files, `ada_lovelace-1257857271.png` for a generated image: the character, the run number, the step or seed.
Only lower-case letters, digits, `_` and `-`, so a name is safe on every file system and easy to type.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from sqlalchemy.orm import Session

from isengard.db.models import Character, Job, JobArtifact, Lora

_NOT_SAFE = re.compile(r"[^a-z0-9]+")
MAX_STEM = 60


def slug(text: str, fallback: str = "isengard") -> str:
    """`Ada Lovelace` -> `ada_lovelace`; text with nothing usable gives the fallback."""
    return _NOT_SAFE.sub("_", text.lower()).strip("_")[:MAX_STEM].strip("_") or fallback


def _character_slug(db: Session, character_id: str | None, fallback: str) -> str:
    character = db.get(Character, character_id) if character_id else None
    return slug(character.name if character is not None else fallback)


def run_stem(db: Session, job: Job) -> str:
    """`ada_lovelace-run3` (a run without a number, from before runs were numbered: its name)."""
    who = _character_slug(db, job.character_id, job.name or job.plugin)
    return f"{who}-run{job.run_number}" if job.run_number else f"{who}-{slug(job.name or job.id[:8])}"


def _final_step(job: Job) -> int | None:
    steps = (job.config or {}).get("steps")
    return int(steps) if isinstance(steps, int) else None


def artifact_name(db: Session, job: Job, artifact: JobArtifact) -> str:
    """A run's LoRA or checkpoint by step; its other files (samples, logs) keep their own name after the run's."""
    suffix = PurePath(artifact.name).suffix.lower()
    if job.kind != "training":
        return f"{_character_slug(db, job.character_id, job.name)}-{slug(PurePath(artifact.name).stem)}{suffix}"
    if suffix == ".safetensors":
        step = artifact.step if artifact.step is not None else _final_step(job)
        if step is not None:
            return f"{run_stem(db, job)}-step{step}{suffix}"
    return f"{run_stem(db, job)}-{slug(PurePath(artifact.name).stem)}{suffix}"


def lora_name(db: Session, lora: Lora) -> str:
    """A trained LoRA is named by its run and step; an imported or renamed one by its own name."""
    job = db.get(Job, lora.job_id) if lora.job_id and not (lora.meta or {}).get("renamed") else None
    if job is not None:
        step = lora.step if lora.step is not None else _final_step(job)
        if step is not None:
            return f"{run_stem(db, job)}-step{step}.safetensors"
        return f"{run_stem(db, job)}.safetensors"
    return f"{slug(lora.name, 'lora')}.safetensors"


def generation_name(db: Session, character_id: str | None, seed: int, extension: str = ".png") -> str:
    return f"{_character_slug(db, character_id, 'isengard')}-{seed}{extension}"
