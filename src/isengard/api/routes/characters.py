"""Routes for characters: CRUD, image uploads, bulk caption edits and the dataset quality report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from isengard.api.deps import DataDep, DbSession, ServicesDep
from isengard.api.middleware import UPLOAD_ERROR_RESPONSES, ErrorMessage
from isengard.api.ratelimit import rate_limited
from isengard.api.schemas.characters import (
    BulkCaptionEdit,
    BulkCaptionOut,
    CharacterCreate,
    CharacterOut,
    CharacterUpdate,
    DatasetReport,
    UploadOut,
)
from isengard.api.schemas.evaluation import DatasetIdentityReport
from isengard.api.services.dataset import characters as service
from isengard.api.services.dataset.identity import identity_report
from isengard.api.services.dataset.report import build_report
from isengard.api.services.dataset.uploads import receive_upload, upload_status_code
from isengard.api.services.training.runs import default_resolution
from isengard.api.support.params import path_id

router = APIRouter(tags=["characters"])

CharacterId = Annotated[str, path_id("character")]

# The upload body is parsed by the route itself (streamed to disk), so its schema is declared here for clients.
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "images (JPEG, PNG, WebP), zips of images with optional same-named "
                            ".txt captions, or .txt captions named like an image of the same request",
                        }
                    },
                }
            }
        },
    }
}


_NAME_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorMessage, "description": "another character already has this name (ignoring case)"}
}


@router.post("/characters", status_code=201, responses=_NAME_TAKEN)
def create_character(db: DbSession, body: CharacterCreate) -> CharacterOut:
    return service.create_character(db, body)


@router.get("/characters")
def list_characters(db: DbSession) -> list[CharacterOut]:
    return service.describe_characters(db)


@router.get("/characters/{character_id}")
def get_character(db: DbSession, character_id: CharacterId) -> CharacterOut:
    return service.describe_character(db, character_id)


@router.patch("/characters/{character_id}", responses=_NAME_TAKEN)
def update_character(db: DbSession, character_id: CharacterId, body: CharacterUpdate) -> CharacterOut:
    return service.update_character(db, character_id, body)


@router.delete(
    "/characters/{character_id}",
    status_code=204,
    responses={409: {"model": ErrorMessage, "description": "the character has a queued or running job"}},
)
def delete_character(db: DbSession, data: DataDep, character_id: CharacterId) -> Response:
    service.delete_character(db, data, character_id)
    return Response(status_code=204)


@router.post(
    "/characters/{character_id}/images",
    status_code=201,
    # The route answers with its own JSONResponse (the status depends on what was stored); this names its body.
    response_model=UploadOut,
    dependencies=[Depends(rate_limited("uploads"))],
    openapi_extra=_UPLOAD_BODY,
    responses={
        **UPLOAD_ERROR_RESPONSES,
        200: {"model": UploadOut, "description": "only duplicates of images already stored"},
        500: {
            "description": "nothing stored because the server failed to store a file; each file with its result",
            "model": UploadOut,
        },
        # Either every file was refused (the per-file list) or the request itself was invalid (a bad id).
        422: {
            "description": "every file was refused, each with its reason; or the request itself is invalid",
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"$ref": "#/components/schemas/UploadOut"},
                            {"$ref": "#/components/schemas/UnprocessableBody"},
                        ]
                    }
                }
            },
        },
    },
)
async def upload_images(
    request: Request, db: DbSession, services: ServicesDep, character_id: CharacterId
) -> JSONResponse:
    result = await receive_upload(request, db, services, character_id)
    return JSONResponse(status_code=upload_status_code(result), content=result.model_dump(mode="json"))


@router.post("/characters/{character_id}/captions/bulk")
def bulk_edit_captions(
    db: DbSession, data: DataDep, character_id: CharacterId, edit: Annotated[BulkCaptionEdit, Body()]
) -> BulkCaptionOut:
    return service.bulk_edit_captions(db, data, character_id, edit)


@router.get("/characters/{character_id}/dataset/report")
def dataset_report(
    db: DbSession,
    services: ServicesDep,
    character_id: CharacterId,
    resolution: Annotated[
        int | None,
        Query(ge=64, le=4096, description="the training resolution, in px; default: what a run with defaults uses"),
    ] = None,
) -> DatasetReport:
    return build_report(db, character_id, resolution or default_resolution(services))


@router.get("/characters/{character_id}/dataset/identity")
def dataset_identity(db: DbSession, services: ServicesDep, character_id: CharacterId) -> DatasetIdentityReport:
    """Photos of someone else, with no face or several faces, and near-copies, by the face evaluator."""
    return identity_report(services, db, character_id)
