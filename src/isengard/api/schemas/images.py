"""Request and response models of the image routes (dataset grid, captions, files)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from isengard.api.support.text import NoNul, RequestModel
from isengard.captions.trigger import MAX_CAPTION_CHARS
from isengard.db.models import Image
from isengard.imaging import decode_flags


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

    @classmethod
    def from_row(cls, row: Image) -> ImageOut:
        return cls(
            id=row.id,
            character_id=row.character_id,
            url=image_file_url(row.id),
            thumbnail_url=image_thumbnail_url(row.id),
            width=row.width,
            height=row.height,
            caption=row.caption,
            flags=decode_flags(row.flags),
            near_duplicate_of=row.near_duplicate_of,
            original_name=row.original_name,
            created_at=row.created_at,
        )


class ImagePage(BaseModel):
    items: list[ImageOut]
    next_cursor: str | None


class ImageUpdate(RequestModel):
    model_config = ConfigDict(extra="forbid")
    caption: Annotated[str, StringConstraints(max_length=MAX_CAPTION_CHARS), NoNul]


def image_file_url(image_id: str) -> str:
    return f"/api/images/{image_id}/file"


def image_thumbnail_url(image_id: str) -> str:
    return f"/api/images/{image_id}/thumbnail"
