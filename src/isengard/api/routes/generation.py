"""Routes for generation: submit images and comparison grids, list image plugins, and the gallery."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.responses import FileResponse

from isengard.api.deps import DataDep, DbSession, ServicesDep
from isengard.api.middleware import ErrorMessage
from isengard.api.ratelimit import rate_limited
from isengard.api.schemas.generation import (
    AgainOptions,
    GenerationCreate,
    GenerationOut,
    GenerationPage,
    GridCreate,
    ImagePluginOut,
)
from isengard.api.schemas.jobs import JobOut
from isengard.api.services.generation import gallery
from isengard.api.services.generation import submit as service
from isengard.api.support.params import OptionalId, PageCursor, path_id

router = APIRouter(tags=["generation"])

GenerationId = Annotated[str, path_id("generation")]


@router.get("/generation/plugins")
def image_plugins(services: ServicesDep) -> list[ImagePluginOut]:
    return service.list_image_plugins(services)


@router.post("/generation", status_code=202, dependencies=[Depends(rate_limited("generation"))])
def generate(services: ServicesDep, db: DbSession, body: GenerationCreate) -> JobOut:
    return JobOut.from_row(service.submit_generation(services, db, body))


@router.post("/generation/grid", status_code=202, dependencies=[Depends(rate_limited("generation"))])
def generate_grid(services: ServicesDep, db: DbSession, body: GridCreate) -> JobOut:
    return JobOut.from_row(service.submit_grid(services, db, body))


@router.get("/generations")
def list_generations(
    db: DbSession,
    character_id: OptionalId = None,
    lora_id: OptionalId = None,
    job_id: OptionalId = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 60,
    cursor: PageCursor = None,
) -> GenerationPage:
    return gallery.list_generations(
        db, character_id=character_id, lora_id=lora_id, job_id=job_id, limit=limit, cursor=cursor
    )


@router.get("/generations/{generation_id}")
def get_generation(db: DbSession, generation_id: GenerationId) -> GenerationOut:
    return GenerationOut.from_row(gallery.get_generation(db, generation_id))


@router.get("/generations/{generation_id}/request")
def generation_request(db: DbSession, generation_id: GenerationId) -> GenerationCreate:
    """The body of POST /api/generation that reproduces this image (to edit and resubmit)."""
    return gallery.request_for(gallery.get_generation(db, generation_id))


@router.post(
    "/generations/{generation_id}/again",
    status_code=202,
    dependencies=[Depends(rate_limited("generation"))],
    responses={409: {"model": ErrorMessage, "description": "a comparison grid is re-run from its grid request"}},
)
def generate_again(
    services: ServicesDep,
    db: DbSession,
    generation_id: GenerationId,
    options: Annotated[AgainOptions | None, Body()] = None,
) -> JobOut:
    body = gallery.request_for(gallery.get_generation(db, generation_id), options)
    return JobOut.from_row(service.submit_generation(services, db, body))


@router.delete("/generations/{generation_id}", status_code=204)
def delete_generation(db: DbSession, data: DataDep, generation_id: GenerationId) -> Response:
    gallery.delete_generation(db, data, generation_id)
    return Response(status_code=204)


@router.get("/generations/{generation_id}/file", response_class=FileResponse)
def generation_file(db: DbSession, data: DataDep, generation_id: GenerationId) -> FileResponse:
    return gallery.serve_image(db, data, generation_id)


@router.get("/generations/{generation_id}/thumbnail", response_class=FileResponse)
def generation_thumbnail(db: DbSession, data: DataDep, generation_id: GenerationId) -> FileResponse:
    return gallery.serve_thumbnail(db, data, generation_id)
