"""Routes for images: the dataset grid across characters, captions, deletion, originals and thumbnails."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from isengard.api.deps import DataDep, DbSession
from isengard.api.middleware import UnprocessableBody
from isengard.api.schemas.images import EditRequest, FaceCropRequest, ImageOut, ImagePage, ImageUpdate
from isengard.api.services.dataset import edits
from isengard.api.services.dataset import images as service
from isengard.api.support.params import OptionalId, PageCursor, path_id

router = APIRouter(tags=["images"])

ImageId = Annotated[str, path_id("image")]
FlagFilter = Literal["small", "blurry", "extreme_aspect", "near_duplicate", "missing_caption"]


@router.get("/images")
def list_images(
    db: DbSession,
    character_id: OptionalId = None,
    flag: Annotated[FlagFilter | None, Query(description="only images with this quality flag")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 60,
    cursor: PageCursor = None,
) -> ImagePage:
    return service.list_images(db, character_id=character_id, flag=flag, limit=limit, cursor=cursor)


@router.get("/images/{image_id}")
def get_image(db: DbSession, image_id: ImageId) -> ImageOut:
    return ImageOut.from_row(service.get_image(db, image_id))


@router.patch("/images/{image_id}")
def update_image(db: DbSession, data: DataDep, image_id: ImageId, body: ImageUpdate) -> ImageOut:
    return service.update_image(db, data, image_id, body)


@router.delete("/images/{image_id}", status_code=204)
def delete_image(db: DbSession, data: DataDep, image_id: ImageId) -> Response:
    service.delete_image(db, data, image_id)
    return Response(status_code=204)


@router.get("/images/{image_id}/file", response_class=Response)
def image_file(request: Request, db: DbSession, data: DataDep, image_id: ImageId) -> Response:
    return service.serve_original(request, db, data, image_id)


@router.get("/images/{image_id}/thumbnail", response_class=Response)
def image_thumbnail(request: Request, db: DbSession, data: DataDep, image_id: ImageId) -> Response:
    return service.serve_thumbnail(request, db, data, image_id)


@router.put(
    "/images/{image_id}/edit",
    responses={422: {"model": UnprocessableBody, "description": "the crop does not fit the photo"}},
)
def edit_image(db: DbSession, data: DataDep, image_id: ImageId, body: EditRequest) -> ImageOut:
    """Rotate and crop the photo (the whole edit, drawn from the kept original): what trains and what the grid
    shows from now on; undo restores the original."""
    return edits.edit_image(data, db, image_id, body)


@router.post(
    "/images/{image_id}/edit/face",
    responses={422: {"model": UnprocessableBody, "description": "no face found, or no face detector installed"}},
)
def crop_image_to_face(db: DbSession, data: DataDep, image_id: ImageId, body: FaceCropRequest) -> ImageOut:
    """Crop to the largest face the face detector finds, with head and shoulders, at the aspect ratio asked."""
    return edits.crop_to_face(data, db, image_id, body)


@router.delete("/images/{image_id}/edit")
def undo_image_edit(db: DbSession, data: DataDep, image_id: ImageId) -> ImageOut:
    """The original photo back, as uploaded."""
    return edits.undo_edit(data, db, image_id)
