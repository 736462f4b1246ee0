"""Routes for the LoRA library: list, details, download, rename, delete, import, a character's default LoRA."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from isengard.api.deps import DataDep, DbSession, ServicesDep
from isengard.api.middleware import UPLOAD_ERROR_RESPONSES, ErrorMessage
from isengard.api.ratelimit import rate_limited
from isengard.api.schemas.loras import (
    DefaultLoraChoice,
    DefaultLoraOut,
    LoraImportRefused,
    LoraOut,
    LoraPage,
    LoraSource,
    LoraUpdate,
)
from isengard.api.services.loras import default as defaults
from isengard.api.services.loras import importer as lora_import
from isengard.api.services.loras import library as service
from isengard.api.services.loras.detect import BaseChoiceNeeded
from isengard.api.support.params import OptionalId, PageCursor, path_id
from isengard.api.support.text import NoNul, column_max_length
from isengard.db.models import Character, Lora

router = APIRouter(tags=["loras"])

LoraId = Annotated[str, path_id("LoRA")]
CharacterId = Annotated[str, path_id("character")]


@router.get("/loras")
def list_loras(
    db: DbSession,
    data: DataDep,
    character_id: OptionalId = None,
    source: Annotated[LoraSource | None, Query(description="trained, checkpoint or imported")] = None,
    job_id: OptionalId = None,
    base: Annotated[
        str | None, Query(max_length=40, description="only LoRAs of this base (a registry name, or 'unknown')")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: PageCursor = None,
) -> LoraPage:
    return service.list_loras(
        db, data, character_id=character_id, source=source, job_id=job_id, limit=limit, cursor=cursor, base=base
    )


@router.post(
    "/loras/import",
    status_code=201,
    response_model=LoraOut,
    dependencies=[Depends(rate_limited("uploads"))],
    responses={
        **UPLOAD_ERROR_RESPONSES,
        413: {"model": ErrorMessage, "description": "the file is larger than ISENGARD_MAX_LORA_UPLOAD_BYTES"},
        422: {
            "model": LoraImportRefused,
            "description": "the file cannot be used, with the reason; or it fits several bases and does not say "
            "which: `candidates` lists them, send it again with `base` set to one",
        },
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"files": {"type": "string", "format": "binary"}},
                        "required": ["files"],
                    }
                }
            },
            "required": True,
        }
    },
)
async def import_lora(
    request: Request,
    services: ServicesDep,
    name: Annotated[str | None, Query(max_length=column_max_length(Lora.name)), NoNul] = None,
    character_id: OptionalId = None,
    trigger_word: Annotated[str | None, Query(max_length=column_max_length(Lora.trigger_word)), NoNul] = None,
    base: Annotated[
        str | None,
        Query(max_length=100, description="the base the file is for, when the file cannot tell (a 422 asks)"),
        NoNul,
    ] = None,
) -> LoraOut | JSONResponse:
    """Import a FLUX LoRA (.safetensors in diffusers, ai-toolkit or kohya layout) sent as the multipart part
    `files`; it is converted to the diffusers layout. Pickle files are refused. Its base is detected from its keys,
    shapes and header; a file that fits several bases of one architecture without naming one (FLUX.1 [dev] and
    Krea) is refused with the candidates until `base` names one of them."""
    options = lora_import.ImportOptions(name=name, character_id=character_id, trigger_word=trigger_word, base=base)
    try:
        return await lora_import.receive_and_import(services, request, options)
    except BaseChoiceNeeded as exc:
        body = LoraImportRefused(detail=str(exc), candidates=list(exc.candidates))
        return JSONResponse(status_code=422, content=body.model_dump())


@router.get("/loras/resolve")
def resolve_lora(
    db: DbSession, data: DataDep, name: Annotated[str, Query(min_length=1, max_length=200), NoNul]
) -> LoraOut:
    """A LoRA by id, by name, or by a character's name (its newest trained or imported LoRA)."""
    return service.resolve_name(db, data, name)


@router.get("/loras/{lora_id}")
def get_lora(db: DbSession, data: DataDep, lora_id: LoraId) -> LoraOut:
    return service.to_out(db, data, service.get_lora(db, lora_id), with_job=True)


@router.patch("/loras/{lora_id}")
def update_lora(db: DbSession, data: DataDep, lora_id: LoraId, body: LoraUpdate) -> LoraOut:
    return service.update_lora(db, data, lora_id, body)


@router.delete("/loras/{lora_id}", status_code=204)
def delete_lora(db: DbSession, data: DataDep, lora_id: LoraId) -> Response:
    service.delete_lora(db, data, lora_id)
    return Response(status_code=204)


@router.get("/loras/{lora_id}/file", response_class=FileResponse)
def lora_file(db: DbSession, data: DataDep, lora_id: LoraId) -> FileResponse:
    return service.serve_lora_file(db, data, lora_id)


@router.get("/characters/{character_id}/default-lora")
def character_default_lora(db: DbSession, data: DataDep, character_id: CharacterId) -> DefaultLoraOut:
    """The LoRA Generate attaches for the character: the person's choice, else the recommended checkpoint of its
    newest run, else its newest trained or imported LoRA."""
    character = defaults.get_character(db, character_id)
    return _default_out(db, data, character, defaults.default_lora(db, data, character))


@router.put("/characters/{character_id}/default-lora")
def choose_default_lora(
    db: DbSession, data: DataDep, character_id: CharacterId, body: DefaultLoraChoice
) -> DefaultLoraOut:
    """Keep one of the character's LoRAs as its default (null: back to the automatic choice)."""
    character = defaults.get_character(db, character_id)
    return _default_out(db, data, character, defaults.choose_default(db, data, character, body.lora_id))


def _default_out(db: DbSession, data: DataDep, character: Character, found: defaults.DefaultLora) -> DefaultLoraOut:
    lora = service.to_out(db, data, found.lora) if found.lora is not None else None
    if lora is not None:
        lora.default_reason = found.reason
    return DefaultLoraOut(
        character_id=character.id, lora=lora, reason=found.reason, recommended_lora_id=found.recommended_lora_id
    )
