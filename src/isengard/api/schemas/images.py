"""Request and response models of the image routes (dataset grid, captions, files)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from isengard.api.support.text import NoNul, RequestModel
from isengard.captions.trigger import MAX_CAPTION_CHARS
from isengard.dataset.image_files import edit_tag
from isengard.db.models import Image
from isengard.imaging import decode_flags


class ImageEdit(BaseModel):
    """A photo's edit as stored: quarter-turns clockwise, then a crop in the turned photo's pixels."""

    rotate: int
    crop: list[int] | None = Field(default=None, description="[left, top, right, bottom] after the rotation")
    original_width: int
    original_height: int


class EditRequest(BaseModel):
    """The whole edit, drawn from the original (it replaces any earlier edit)."""

    model_config = ConfigDict(extra="forbid")
    rotate: Literal[0, 90, 180, 270] = 0
    crop: list[int] | None = Field(
        default=None, min_length=4, max_length=4, description="[left, top, right, bottom] in pixels, after the rotation"
    )


class FaceCropRequest(BaseModel):
    """Crop to the face the face detector finds (the largest), after turning the photo `rotate` degrees."""

    model_config = ConfigDict(extra="forbid")
    rotate: Literal[0, 90, 180, 270] = 0
    aspect: float | None = Field(default=None, gt=0.2, le=5.0, description="width / height; square when absent")


class ImageOut(BaseModel):
    id: str
    character_id: str
    url: str
    thumbnail_url: str
    width: int
    height: int
    caption: str
    flags: list[str]
    near_duplicate_of: str | None = None
    original_name: str
    created_at: datetime
    edit: ImageEdit | None = Field(default=None, description="the photo's edit over its kept original; None: none")

    @classmethod
    def from_row(cls, row: Image) -> ImageOut:
        tag = edit_tag(row.edit)
        return cls(
            id=row.id,
            character_id=row.character_id,
            url=image_file_url(row.id) + (f"?v={tag}" if tag else ""),
            thumbnail_url=image_thumbnail_url(row.id, tag),
            width=row.width,
            height=row.height,
            caption=row.caption,
            flags=decode_flags(row.flags),
            near_duplicate_of=row.near_duplicate_of,
            original_name=row.original_name,
            created_at=row.created_at,
            edit=ImageEdit.model_validate(row.edit) if row.edit else None,
        )


class ImagePage(BaseModel):
    items: list[ImageOut]
    next_cursor: str | None


class ImageUpdate(RequestModel):
    model_config = ConfigDict(extra="forbid")
    caption: Annotated[str, StringConstraints(max_length=MAX_CAPTION_CHARS), NoNul]


def image_file_url(image_id: str) -> str:
    return f"/api/images/{image_id}/file"


def image_thumbnail_url(image_id: str, tag: str | None = None) -> str:
    """`tag`: the photo's edit (see image_files.edit_tag), so an edited photo's thumbnail has a URL of its own."""
    return f"/api/images/{image_id}/thumbnail" + (f"?v={tag}" if tag else "")
