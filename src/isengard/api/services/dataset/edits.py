"""Editing dataset photos in place, non-destructively: rotate, crop, crop to the face, undo.

The photo's stored file (`original_path`) is what everything reads: the grid, thumbnails, training, captioning,
the ai-toolkit folder. An edit keeps the untouched upload aside (`kept_original_path`) on its first change, draws
the edit from it into the stored file, and records the edit on the row; undo puts the original back. Files are
written before the row is committed, each atomically, and the original is only removed once the row says there is
no edit any more: a crash in between leaves either the old edit or the new one, never a lost original.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from fastapi import HTTPException
from PIL import Image as PILImage
from sqlalchemy.orm import Session

from isengard.api.schemas.images import EditRequest, FaceCropRequest, ImageOut
from isengard.api.services.dataset.images import get_image
from isengard.api.services.jobs.run_images import active_run_using
from isengard.dataset.image_files import kept_original_path, original_path, original_relative, thumbnail_path
from isengard.dataset.photo_edits import (
    Box,
    EditError,
    apply_edit,
    edit_record,
    face_crop,
    rotated_size,
)
from isengard.db.models import Image
from isengard.imaging import analysis_gray, blur_score, encode_flags, make_thumbnail, quality_flags, save_image
from isengard.plugins.api import PluginError
from isengard.storage import DataTree, atomic_path

log = logging.getLogger(__name__)


def _ensure_not_in_a_run(db: Session, image: Image) -> None:
    """A queued or running run trains on the photo as it was when the run was submitted: its file must not change
    under it (the same promise its caption snapshot keeps)."""
    run = active_run_using(db, image.character_id, original_relative(image))
    if run is not None:
        raise HTTPException(
            status_code=409,
            detail=f"run '{run.name}' is {run.status} and trains on this photo as it is: edit it once the run ends",
        )


def _keep_original(data: DataTree, image: Image) -> Path:
    """The untouched upload, set aside on the first edit (a hard link where the file system allows, else a copy)."""
    kept = kept_original_path(data, image)
    if kept.is_file():
        return kept
    kept.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(kept) as tmp:
        try:
            os.link(original_path(data, image), tmp)
        except OSError:
            shutil.copyfile(original_path(data, image), tmp)
    return kept


def _open(path: Path) -> PILImage.Image:
    with PILImage.open(path) as opened:
        opened.load()
        return opened.copy()


def _write(data: DataTree, image: Image, edited: PILImage.Image) -> None:
    save_image(edited, original_path(data, image), image.format or "PNG")
    make_thumbnail(edited, thumbnail_path(data, image))


def _measure(image: Image, photo: PILImage.Image) -> None:
    """Size, sharpness and the flags that follow from them, for the photo as it now trains."""
    image.width, image.height = photo.size
    image.blur_score = blur_score(analysis_gray(photo))
    near = image.near_duplicate_of is not None
    image.flags = encode_flags(quality_flags(image.width, image.height, image.blur_score, near_duplicate=near))


def _apply(data: DataTree, db: Session, image: Image, rotate: int, crop: Box | None) -> ImageOut:
    _ensure_not_in_a_run(db, image)
    kept = _keep_original(data, image)
    original = _open(kept)
    try:
        edited = apply_edit(original, rotate, crop)
    except EditError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    if rotate == 0 and crop is None:
        return undo_edit(data, db, image.id)
    _write(data, image, edited)
    image.edit = edit_record(rotate, crop, original.size)
    _measure(image, edited)
    db.commit()
    log.info("photo edited", extra={"image_id": image.id, "rotate": rotate, "crop": image.edit["crop"]})
    return ImageOut.from_row(image)


def edit_image(data: DataTree, db: Session, image_id: str, body: EditRequest) -> ImageOut:
    """Replace the photo's edit with `body`, drawn from the original."""
    image = get_image(db, image_id)
    crop = Box(*body.crop) if body.crop is not None else None
    return _apply(data, db, image, body.rotate, crop)


def crop_to_face(data: DataTree, db: Session, image_id: str, body: FaceCropRequest) -> ImageOut:
    """Turn the photo, find the largest face in it, and crop around it (head and shoulders, at `aspect`)."""
    from isengard.plugins.evaluate.face import face_boxes

    image = get_image(db, image_id)
    _ensure_not_in_a_run(db, image)
    original = _open(_keep_original(data, image))
    turned = apply_edit(original, body.rotate, None)
    try:
        faces = face_boxes(turned)
    except PluginError as exc:
        raise HTTPException(status_code=422, detail=f"cannot look for faces here: {exc}") from None
    if not faces:
        raise HTTPException(status_code=422, detail="no face was found in this photo: crop it by hand")
    face = faces[0]
    width, height = rotated_size(original.width, original.height, body.rotate)
    box = face_crop(Box(face.left, face.top, face.right, face.bottom), width, height, body.aspect)
    return _apply(data, db, image, body.rotate, box)


def undo_edit(data: DataTree, db: Session, image_id: str) -> ImageOut:
    """The original back in place; nothing to undo is not an error."""
    image = get_image(db, image_id)
    kept = kept_original_path(data, image)
    if kept.is_file():
        _ensure_not_in_a_run(db, image)
        original = _open(kept)
        with atomic_path(original_path(data, image)) as tmp:
            shutil.copyfile(kept, tmp)
        make_thumbnail(original, thumbnail_path(data, image))
        _measure(image, original)
    image.edit = {}
    db.commit()
    kept.unlink(missing_ok=True)
    log.info("photo edit undone", extra={"image_id": image.id})
    return ImageOut.from_row(image)
