"""The dataset identity check's response: each finding with its image, distance and kind."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from isengard.api.schemas.characters import ImageRef
from isengard.api.support.text import RequestModel


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


DEFAULT_PROMPTS = [
    "portrait photo, looking at the camera, soft daylight",
    "full body photo, walking in a park",
    "wearing a red coat on a city street at night",
]


class LoraEvaluationCreate(RequestModel):
    """Evaluate a LoRA: render fixed prompts x seeds with it and score them against the character's photos."""

    model_config = ConfigDict(extra="forbid")

    plugin: str = Field(default="diffusers", max_length=100)
    character_id: str | None = Field(default=None, max_length=32, description="default: the LoRA's character")
    prompts: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=lambda: list(DEFAULT_PROMPTS), min_length=1, max_length=8
    )
    seeds: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] = Field(
        default_factory=lambda: [1, 2], min_length=1, max_length=8
    )
    width: int = Field(default=512, ge=64, le=2048)
    height: int = Field(default=512, ge=64, le=2048)
    steps: int = Field(default=20, ge=1, le=100)
    guidance: float = Field(default=3.5, ge=0.0, le=30.0)
    weight: float = Field(default=1.0, ge=-4.0, le=4.0)
