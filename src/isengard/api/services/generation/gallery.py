"""The gallery: generated images newest first, their files, deletion, and "generate again with these settings"."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from fastapi import HTTPException
from fastapi.responses import FileResponse
from sqlalchemy import String, cast, delete, select
from sqlalchemy.orm import Session

from isengard.api.schemas.generation import AgainOptions, GenerationCreate, GenerationOut, GenerationPage, LoraSelection
from isengard.api.services.dataset.images import IMMUTABLE
from isengard.api.support import download_names
from isengard.api.support.pagination import keyset_page
from isengard.api.support.rows import get_or_404
from isengard.db.models import Generation, JobArtifact
from isengard.storage import DataTree, UnsafePathError

log = logging.getLogger(__name__)


def get_generation(db: Session, generation_id: str) -> Generation:
    return get_or_404(db, Generation, generation_id, f"generation {generation_id} not found")


def list_generations(
    db: Session,
    *,
    character_id: str | None,
    lora_id: str | None,
    job_id: str | None,
    limit: int,
    cursor: str | None,
) -> GenerationPage:
    query = select(Generation)
    if character_id is not None:
        query = query.where(Generation.character_id == character_id)
    if job_id is not None:
        query = query.where(Generation.job_id == job_id)
    if lora_id is not None:
        # The LoRA list is JSON; its text holds each id quoted, on SQLite and PostgreSQL alike.
        query = query.where(cast(Generation.loras, String).like(f'%"{lora_id}"%'))
    rows, next_cursor = keyset_page(db, query, Generation, cursor=cursor, limit=limit)
    return GenerationPage(items=[GenerationOut.from_row(row) for row in rows], next_cursor=next_cursor)


def _file(data: DataTree, relative: str | None, what: str) -> Path:
    path = data.stored_file(relative)
    if path is None:
        raise HTTPException(status_code=404, detail=f"{what} not found")
    return path


def serve_image(db: Session, data: DataTree, generation_id: str) -> FileResponse:
    row = get_generation(db, generation_id)
    path = _file(data, row.path, "image file")
    # Inline (the page shows it) with a real name for "Save as" and the download link.
    name = download_names.generation_name(db, row.character_id, row.seed, path.suffix or ".png")
    return FileResponse(
        path,
        media_type="image/png",
        headers={"Cache-Control": IMMUTABLE},
        filename=name,
        content_disposition_type="inline",
    )


def serve_thumbnail(db: Session, data: DataTree, generation_id: str) -> FileResponse:
    row = get_generation(db, generation_id)
    path = _file(data, row.thumbnail_path, "thumbnail")
    return FileResponse(path, media_type="image/webp", headers={"Cache-Control": IMMUTABLE})


def delete_generation(db: Session, data: DataTree, generation_id: str) -> None:
    row = get_generation(db, generation_id)
    files = [row.path, row.thumbnail_path]
    if row.job_id:
        db.execute(delete(JobArtifact).where(JobArtifact.job_id == row.job_id, JobArtifact.path == row.path))
    db.delete(row)
    db.commit()
    for relative in files:
        if not relative:
            continue
        with contextlib.suppress(FileNotFoundError, UnsafePathError):
            data.resolve_relative(relative).unlink()
    log.info("generation deleted", extra={"generation_id": generation_id})


def request_for(row: Generation, options: AgainOptions | None = None) -> GenerationCreate:
    """The request that makes this image again (same seed unless a new one is asked for)."""
    params = row.params or {}
    if params.get("kind") == "grid":
        raise HTTPException(
            status_code=409, detail="a comparison grid is re-run from its grid request, not as a single image"
        )
    options = options or AgainOptions()
    return GenerationCreate(
        plugin=row.plugin,
        character_id=row.character_id,
        # The prompt as the user wrote it; the trigger word is added again by the same rule.
        prompt=str(params.get("user_prompt") or row.prompt),
        add_trigger_word=bool(params.get("add_trigger_word", True)),
        width=row.width,
        height=row.height,
        steps=row.steps,
        guidance=row.guidance,
        seed=None if options.new_seed else row.seed,
        num_images=options.num_images,
        loras=[
            LoraSelection(lora_id=str(item["lora_id"]), weight=float(item.get("weight", 1.0))) for item in row.loras
        ],
        workflow=params.get("workflow"),
    )
