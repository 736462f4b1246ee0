"""Which images a training run reads: the dataset snapshot its payload holds (paths under `uploads/`).

An image a queued or running run will read cannot be deleted (the run would fail mid-way); a stopped run whose
images were deleted since cannot resume (it is refused with the reason instead of failing on its first step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isengard.db.models import Job
from isengard.domain import JobKind, JobStatus

_ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def dataset_paths(job: Job) -> list[str]:
    """The data-tree relative paths of the images in a training run's snapshot."""
    payload: dict[str, Any] = job.payload or {}
    items = (payload.get("input") or {}).get("dataset") or []
    return [str(item["image_path"]) for item in items if isinstance(item, dict) and "image_path" in item]


def active_run_using(session: Session, character_id: str, relative_path: str) -> Job | None:
    """A queued or running training run of the character whose snapshot includes the image, if any."""
    runs = session.scalars(
        select(Job).where(Job.kind == JobKind.TRAINING.value, Job.character_id == character_id, Job.status.in_(_ACTIVE))
    )
    return next((run for run in runs if relative_path in dataset_paths(run)), None)


def missing_images(data_root: Path, job: Job) -> list[str]:
    return [path for path in dataset_paths(job) if not (data_root / path).is_file()]
