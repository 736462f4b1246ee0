"""Images: the dataset grid (keyset pagination), captions, deletion, and serving files from the data tree."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import HTTPException, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from isengard.api.schemas.images import ImageOut, ImagePage, ImageUpdate
from isengard.api.services.jobs.run_images import active_run_using
from isengard.api.support.pagination import keyset_page, newest_first
from isengard.api.support.rows import get_or_404
from isengard.captions.trigger import normalize_caption
from isengard.dataset.caption_files import mirror_committed_captions
from isengard.dataset.image_files import (
    caption_path,
    edit_tag,
    kept_original_path,
    original_path,
    original_relative,
    thumbnail_path,
)
from isengard.db.models import Image
from isengard.imaging import FLAG_NEAR_DUPLICATE, decode_flags, encode_flags
from isengard.storage import DataTree, UnsafePathError

log = logging.getLogger(__name__)

FLAG_MISSING_CAPTION = "missing_caption"  # not stored: a caption can change at any time, so it is queried
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
# Files behind an id never change (a new upload or generation gets a new id), so browsers may keep them for good.
IMMUTABLE = "private, max-age=31536000, immutable"


def get_image(db: Session, image_id: str) -> Image:
    return get_or_404(db, Image, image_id, f"image {image_id} not found")


def dataset_query(character_id: str) -> Select[Image]:
    """A character's images oldest first (upload order): how training, the quality report and bulk edits see them."""
    return select(Image).where(Image.character_id == character_id).order_by(Image.created_at, Image.id)


# --- Dataset grid ------------------------------------------------------------------------------------------------


def grid_query(
    *, character_id: str | None, flag: str | None, after: tuple[datetime, str] | None, limit: int
) -> Select[Image]:
    """Newest first, keyset on (created_at, id) (see pagination)."""
    return newest_first(grid_filter(character_id=character_id, flag=flag), Image, after=after, limit=limit)


def grid_filter(*, character_id: str | None, flag: str | None) -> Select[Image]:
    query = select(Image)
    if character_id is not None:
        query = query.where(Image.character_id == character_id)
    if flag == FLAG_MISSING_CAPTION:
        query = query.where(Image.caption == "")
    elif flag is not None:
        query = query.where(Image.flags.like(f"%,{flag},%"))
    return query


def list_images(
    db: Session, *, character_id: str | None, flag: str | None, limit: int, cursor: str | None
) -> ImagePage:
    query = grid_filter(character_id=character_id, flag=flag)
    rows, next_cursor = keyset_page(db, query, Image, cursor=cursor, limit=limit)
    return ImagePage(items=[ImageOut.from_row(row) for row in rows], next_cursor=next_cursor)


# --- Editing -----------------------------------------------------------------------------------------------------


def update_image(db: Session, data: DataTree, image_id: str, body: ImageUpdate) -> ImageOut:
    image = get_image(db, image_id)
    image.caption = normalize_caption(body.caption)
    db.commit()
    mirror_committed_captions(data, [image])
    return ImageOut.from_row(image)


def delete_image(db: Session, data: DataTree, image_id: str) -> None:
    image = get_image(db, image_id)
    run = active_run_using(db, image.character_id, original_relative(image))
    if run is not None:
        raise HTTPException(
            status_code=409,
            detail=f"training run '{run.name}' ({run.status}) reads this image: delete it once the run has ended",
        )
    files = [
        original_path(data, image),
        kept_original_path(data, image),
        thumbnail_path(data, image),
        caption_path(data, image),
    ]
    # Images that pointed at this one as their near-duplicate no longer have that reason to be flagged.
    for follower in list(db.scalars(select(Image).where(Image.near_duplicate_of == image.id))):
        follower.flags = encode_flags([f for f in decode_flags(follower.flags) if f != FLAG_NEAR_DUPLICATE])
        follower.near_duplicate_of = None
    db.delete(image)
    db.commit()
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    log.info("image deleted", extra={"image_id": image_id, "character_id": image.character_id})


# --- Files -------------------------------------------------------------------------------------------------------


def serve_file(request: Request, data: DataTree, path: Callable[[], Path], etag: str, what: str) -> Response:
    """Serve the file `path()` names: only a regular file, reached without links, inside the data tree."""
    try:
        inside = data.regular_file(path())
    except UnsafePathError:  # a folder on the way leads outside the tree
        inside = None
    if inside is None:
        raise HTTPException(status_code=404, detail=f"{what} not found")
    quoted = f'"{etag}"'
    headers = {"Cache-Control": IMMUTABLE, "ETag": quoted}
    if quoted in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    media_type = MEDIA_TYPES.get(inside.suffix.lstrip(".").lower(), "application/octet-stream")
    return FileResponse(inside, media_type=media_type, headers=headers)


def serve_original(request: Request, db: Session, data: DataTree, image_id: str) -> Response:
    image = get_image(db, image_id)
    tag = f"{image.sha256[:32]}-{edit_tag(image.edit) or 'o'}"  # an edit is another file behind the same id
    return serve_file(request, data, lambda: original_path(data, image), tag, "image file")


def serve_thumbnail(request: Request, db: Session, data: DataTree, image_id: str) -> Response:
    image = get_image(db, image_id)
    tag = f"{image.sha256[:32]}-{edit_tag(image.edit) or 'o'}-t"
    return serve_file(request, data, lambda: thumbnail_path(data, image), tag, "thumbnail")
