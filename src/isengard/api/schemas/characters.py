"""Request and response models of the character routes: CRUD, uploads, bulk captions, the quality report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from isengard.api.schemas.images import ImageOut
from isengard.api.support.params import ID_PATTERN
from isengard.api.support.text import CleanName, NoNul, RequestModel, column_max_length
from isengard.captions.lint import CaptionFinding
from isengard.captions.trigger import MAX_CAPTION_CHARS
from isengard.db.models import Character

# 100 characters for a person to read, well inside the column.
CharacterName = Annotated[str, CleanName, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul]
# Brackets would collide with the `[trigger]` placeholder; line breaks have no place in a prompt token.
TriggerWord = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=column_max_length(Character.trigger_word),
        pattern=r"^[^\[\]\r\n]+$",
    ),
    NoNul,
]
Description = Annotated[str, StringConstraints(max_length=5000), NoNul]
ImageId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
CaptionText = Annotated[str, StringConstraints(max_length=MAX_CAPTION_CHARS), NoNul]


class CharacterCreate(RequestModel):
    model_config = ConfigDict(extra="forbid")
    name: CharacterName
    trigger_word: TriggerWord | None = Field(default=None, description="defaults to a slug of the name")
    description: Description = ""


class CharacterUpdate(RequestModel):
    model_config = ConfigDict(extra="forbid")
    name: CharacterName | None = None
    trigger_word: TriggerWord | None = None
    description: Description | None = None


class CharacterOut(BaseModel):
    id: str
    name: str
    trigger_word: str
    description: str
    image_count: int
    lora_count: int
    cover_url: str | None = Field(description="thumbnail of the newest image, if any")
    created_at: datetime
    updated_at: datetime


# --- Uploads -----------------------------------------------------------------------------------------------------

UploadStatus = Literal["stored", "duplicate", "rejected"]


class UploadFileResult(BaseModel):
    name: str = Field(description="the name the file had on the client (inside a zip: zip name / entry path)")
    status: UploadStatus
    reason: str | None = Field(default=None, description="why it was rejected, or what it duplicates")
    image: ImageOut | None = None
    duplicate_of: str | None = None


class UploadOut(BaseModel):
    detail: str = Field(description="one-line summary")
    stored: int
    duplicates: int
    rejected: int
    failed: int = Field(
        default=0, description="files the server could not store (its fault, not the file's); counted in rejected too"
    )
    results: list[UploadFileResult]


# --- Bulk captions -----------------------------------------------------------------------------------------------


class _BulkBase(RequestModel):
    model_config = ConfigDict(extra="forbid")
    image_ids: list[ImageId] | None = Field(
        default=None, max_length=10_000, description="limit the edit to these images (default: all of the character)"
    )


class FindReplace(_BulkBase):
    action: Literal["find_replace"]
    find: Annotated[str, StringConstraints(min_length=1, max_length=500), NoNul]
    replace: Annotated[str, StringConstraints(max_length=500), NoNul] = ""
    case_sensitive: bool = True


class PrependTrigger(_BulkBase):
    action: Literal["prepend_trigger"]


class SetMissing(_BulkBase):
    action: Literal["set_missing"]
    caption: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_CAPTION_CHARS), NoNul]


BulkCaptionEdit = Annotated[FindReplace | PrependTrigger | SetMissing, Field(discriminator="action")]


class BulkCaptionOut(BaseModel):
    updated: int
    image_ids: list[str]


# --- Quality report ----------------------------------------------------------------------------------------------


class ImageRef(BaseModel):
    id: str
    original_name: str
    width: int
    height: int
    thumbnail_url: str


class ResolutionBucket(BaseModel):
    label: str
    min_side: int = Field(description="shorter side from (inclusive)")
    max_side: int | None = Field(description="shorter side below (exclusive); null for the last bucket")
    count: int


class BlurryImage(ImageRef):
    blur_score: float


class AspectImage(ImageRef):
    aspect_ratio: float


class DatasetReport(BaseModel):
    character_id: str
    resolution: int
    count: int
    recommended_images: list[int] = Field(description="the image count that trains well, [fewest, most]")
    verdict: str = Field(description="one line a person can act on")
    resolution_histogram: list[ResolutionBucket]
    too_small: list[ImageRef] = Field(description="shorter side under the training resolution")
    near_duplicate_groups: list[list[ImageRef]] = Field(description="each group oldest first: the rest look like it")
    blurry: list[BlurryImage]
    blur_threshold: float
    extreme_aspect: list[AspectImage]
    extreme_aspect_threshold: float
    missing_captions: list[ImageRef]
    caption_findings: list[CaptionFinding] = Field(
        default_factory=list, description="the caption linter's findings (trigger word, identity words, length...)"
    )
