"""The dataset identity check's response: each finding with its image, distance and kind."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from isengard.api.schemas.characters import ImageRef


class IdentityFindingOut(BaseModel):
    image: ImageRef
    kind: Literal["someone_else", "no_face", "several_faces", "near_copy", "unreadable"]
    message: str
    distance: float | None = None
    other_image: ImageRef | None = None  # near_copy: the photo it copies


class DatasetIdentityReport(BaseModel):
    character_id: str
    status: Literal["available", "not_available"]
    reason: str | None = None  # why the check could not run (no face evaluator, no images)
    evaluator: str | None = None
    faces_compared: int = 0
    same_person_distance: float | None = None  # a face further than this from the others is flagged
    findings: list[IdentityFindingOut]
