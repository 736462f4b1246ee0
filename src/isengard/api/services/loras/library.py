"""The LoRA library: listing, details with the job a LoRA came from, renaming, deletion, files, and resolving
the LoRA ids of a generation request into the references a plugin loads."""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path

from fastapi import HTTPException
from fastapi.responses import FileResponse
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from isengard.api.schemas.loras import LoraJobSummary, LoraOut, LoraPage, LoraUpdate
from isengard.api.support.pagination import keyset_page
from isengard.api.support.rows import get_or_404, get_or_422
from isengard.db.models import Job, JobArtifact, Lora
from isengard.domain import LoraRef
from isengard.storage import DataTree, UnsafePathError

log = logging.getLogger(__name__)


def get_lora(db: Session, lora_id: str) -> Lora:
    return get_or_404(db, Lora, lora_id, f"LoRA {lora_id} not found")


def lora_path(data: DataTree, lora: Lora) -> Path | None:
    try:
        return data.resolve_relative(lora.path)
    except UnsafePathError:
        return None


def to_out(db: Session, data: DataTree, lora: Lora, *, with_job: bool = False) -> LoraOut:
    job = None
    if with_job and lora.job_id:
        row = db.get(Job, lora.job_id)
        if row is not None:
            job = LoraJobSummary(
                id=row.id, name=row.name, status=row.status, plugin=row.plugin, created_at=row.created_at
            )
    return LoraOut.from_row(lora, file_present=data.stored_file(lora.path) is not None, job=job)


def list_loras(
    db: Session,
    data: DataTree,
    *,
    character_id: str | None,
    source: str | None,
    job_id: str | None,
    limit: int,
    cursor: str | None,
) -> LoraPage:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = select(Lora)
    if character_id is not None:
        query = query.where(Lora.character_id == character_id)
    if source is not None:
        query = query.where(Lora.source == source)
    if job_id is not None:
        query = query.where(Lora.job_id == job_id)
    rows, next_cursor = keyset_page(db, query, Lora, cursor=cursor, limit=limit)
    return LoraPage(items=[to_out(db, data, row) for row in rows], next_cursor=next_cursor)


def update_lora(db: Session, data: DataTree, lora_id: str, body: LoraUpdate) -> LoraOut:
    lora = get_lora(db, lora_id)
    if body.name is not None:
        lora.name = body.name.strip()
    if body.trigger_word is not None:
        lora.trigger_word = body.trigger_word.strip()
    db.commit()
    return to_out(db, data, lora, with_job=True)


def delete_lora(db: Session, data: DataTree, lora_id: str) -> None:
    """Remove the row, the job artifact that points at the same file, then the file itself."""
    lora = get_lora(db, lora_id)
    path = lora_path(data, lora)
    if lora.job_id:
        db.execute(delete(JobArtifact).where(JobArtifact.job_id == lora.job_id, JobArtifact.path == lora.path))
    db.delete(lora)
    db.commit()
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    log.info("lora deleted", extra={"lora_id": lora_id})


def _download_name(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "lora"
    return f"{slug[:80]}.safetensors"


def serve_lora_file(db: Session, data: DataTree, lora_id: str) -> FileResponse:
    lora = get_lora(db, lora_id)
    path = data.stored_file(lora.path)
    if path is None:
        raise HTTPException(status_code=404, detail=f"the file of LoRA {lora_id} is missing")
    return FileResponse(path, media_type="application/octet-stream", filename=_download_name(lora.name))


def resolve_lora_refs(db: Session, data: DataTree, selections: list[tuple[str, float]]) -> list[LoraRef]:
    """LoRA ids (with weights) to references a plugin can load; unknown ids or missing files are a 422."""
    refs = []
    for lora_id, weight in selections:
        lora = get_or_422(db, Lora, lora_id, f"no LoRA with id '{lora_id}'")
        if data.stored_file(lora.path) is None:
            raise HTTPException(status_code=422, detail=f"the file of LoRA '{lora.name}' ({lora_id}) is missing")
        refs.append(
            LoraRef(lora_id=lora.id, path=lora.path, weight=weight, name=lora.name, trigger_word=lora.trigger_word)
        )
    return refs
