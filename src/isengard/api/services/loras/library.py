"""The LoRA library: listing, details with the job a LoRA came from, renaming, deletion, files, and resolving
the LoRA ids of a generation request into the references a plugin loads."""

from __future__ import annotations

import contextlib
import difflib
import logging
import re
from pathlib import Path

from fastapi import HTTPException
from fastapi.responses import FileResponse
from sqlalchemy import String, cast, delete, false, func, or_, select, update
from sqlalchemy.orm import Session

from isengard.api.schemas.loras import LoraJobSummary, LoraOut, LoraPage, LoraUpdate
from isengard.api.services.dataset.characters import name_key
from isengard.api.services.loras.default import default_lora, defaults_of
from isengard.api.support import download_names
from isengard.api.support.pagination import keyset_page
from isengard.api.support.rows import get_or_404, get_or_422
from isengard.db.models import Character, Job, JobArtifact, Lora
from isengard.domain import JobStatus, LoraRef
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
    base: str | None = None,
) -> LoraPage:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = select(Lora)
    if character_id is not None:
        query = query.where(Lora.character_id == character_id)
    if source is not None:
        query = query.where(Lora.source == source)
    if job_id is not None:
        query = query.where(Lora.job_id == job_id)
    if base is not None:
        query = query.where(Lora.base == base)
    rows, next_cursor = keyset_page(db, query, Lora, cursor=cursor, limit=limit)
    defaults = defaults_of(db, data, {row.character_id for row in rows if row.character_id})
    items = []
    for row in rows:
        item = to_out(db, data, row)
        default = defaults.get(row.character_id) if row.character_id else None
        if default is not None and default.lora is not None and default.lora.id == row.id:
            item.default_reason = default.reason
        items.append(item)
    return LoraPage(items=items, next_cursor=next_cursor)


def resolve_name(db: Session, data: DataTree, name: str) -> LoraOut:
    """What a person types for a LoRA: its id, its name, or a character's name (then that character's default
    LoRA, see default.py). Unknown is a 404; a name several LoRAs share is a 409 that lists them."""
    key = name.strip()
    by_id = db.get(Lora, key)
    if by_id is not None:
        return to_out(db, data, by_id)
    named = list(
        db.scalars(select(Lora).where(func.lower(Lora.name) == key.lower()).order_by(Lora.created_at.desc()).limit(10))
    )
    if len(named) == 1:
        return to_out(db, data, named[0])
    if named:
        listed = ", ".join(f"{row.id} ({row.source}, {row.created_at:%Y-%m-%d})" for row in named)
        raise HTTPException(status_code=409, detail=f"several LoRAs are named '{key}'; pass an id instead: {listed}")
    character = db.scalars(select(Character).where(Character.name_key == name_key(key))).first()
    if character is None:
        return _resolve_partial(db, data, key)
    return to_out(db, data, _default_of(db, data, character))


def _default_of(db: Session, data: DataTree, character: Character) -> Lora:
    lora = default_lora(db, data, character).lora
    if lora is None:
        raise HTTPException(status_code=404, detail=f"character '{character.name}' has no trained LoRA yet")
    return lora


def _resolve_partial(db: Session, data: DataTree, key: str) -> LoraOut:
    """No exact name: a character, else a LoRA, whose name has a word starting with what was typed ("Ada" for
    "Ada Lovelace"), when just one does; otherwise the names it could mean, or the closest names to a typo."""
    starts_word = re.compile(rf"(?<!\w){re.escape(key.lower())}")
    characters = list(db.scalars(select(Character).order_by(Character.name)))
    matching = [c for c in characters if starts_word.search(c.name.lower())]
    if len(matching) == 1:
        return to_out(db, data, _default_of(db, data, matching[0]))
    loras = list(db.scalars(select(Lora).where(Lora.source.in_(["trained", "imported"])).order_by(Lora.name)))
    matching_loras = [lora for lora in loras if starts_word.search(lora.name.lower())]
    if not matching and len(matching_loras) == 1:
        return to_out(db, data, matching_loras[0])
    names = [c.name for c in matching] or [lora.name for lora in matching_loras]
    if names:
        listed = ", ".join(f"'{name}'" for name in names[:8])
        raise HTTPException(status_code=409, detail=f"'{key}' could mean {listed}: pass the full name or an id")
    known = {c.name.lower(): c.name for c in characters} | {lora.name.lower(): lora.name for lora in loras}
    close = [known[name] for name in difflib.get_close_matches(key.lower(), list(known), n=3, cutoff=0.6)]
    hint = f"; did you mean {' or '.join(repr(name) for name in close)}?" if close else " (see the LoRA library)"
    raise HTTPException(status_code=404, detail=f"no LoRA or character named '{key}'{hint}")


def update_lora(db: Session, data: DataTree, lora_id: str, body: LoraUpdate) -> LoraOut:
    lora = get_lora(db, lora_id)
    if body.name is not None and body.name.strip() != lora.name:
        lora.name = body.name.strip()
        # A name a person chose is also the name of its download, instead of the run's.
        lora.meta = {**(lora.meta or {}), "renamed": True}
    if body.trigger_word is not None:
        lora.trigger_word = body.trigger_word.strip()
    db.commit()
    return to_out(db, data, lora, with_job=True)


def jobs_using(db: Session, lora: Lora) -> list[Job]:
    """Jobs not yet ended that need the LoRA: the run still writing it, generations queued or running with it."""
    active = [JobStatus.QUEUED.value, JobStatus.RUNNING.value]
    # Generation payloads list their LoRAs as JSON; the id appears quoted in its text on SQLite and PostgreSQL.
    mentions = cast(Job.payload, String).like(f'%"{lora.id}"%')
    produced = Job.id == lora.job_id if lora.job_id else false()
    return list(db.scalars(select(Job).where(Job.status.in_(active), or_(produced, mentions)).limit(3)))


def delete_lora(db: Session, data: DataTree, lora_id: str) -> None:
    """Remove the row, the job artifact that points at the same file, then the file itself; refused while a job
    that has not ended needs it."""
    lora = get_lora(db, lora_id)
    users = jobs_using(db, lora)
    if users:
        named = ", ".join(f"{job.kind} job '{job.name or job.id[:8]}' ({job.status})" for job in users)
        raise HTTPException(
            status_code=409, detail=f"this LoRA is used by {named}: delete it once that has ended or is cancelled"
        )
    path = lora_path(data, lora)
    # A character whose chosen default this was goes back to the automatic choice.
    db.execute(update(Character).where(Character.default_lora_id == lora.id).values(default_lora_id=None))
    if lora.job_id:
        db.execute(delete(JobArtifact).where(JobArtifact.job_id == lora.job_id, JobArtifact.path == lora.path))
    db.delete(lora)
    db.commit()
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    log.info("lora deleted", extra={"lora_id": lora_id})


def serve_lora_file(db: Session, data: DataTree, lora_id: str) -> FileResponse:
    lora = get_lora(db, lora_id)
    path = data.stored_file(lora.path)
    if path is None:
        raise HTTPException(status_code=404, detail=f"the file of LoRA {lora_id} is missing")
    return FileResponse(path, media_type="application/octet-stream", filename=download_names.lora_name(db, lora))


def resolve_lora_refs(db: Session, data: DataTree, selections: list[tuple[str, float]]) -> list[LoraRef]:
    """LoRA ids (with weights) to references a plugin can load; unknown ids or missing files are a 422."""
    refs = []
    for lora_id, weight in selections:
        lora = get_or_422(db, Lora, lora_id, f"no LoRA with id '{lora_id}'")
        if data.stored_file(lora.path) is None:
            raise HTTPException(status_code=422, detail=f"the file of LoRA '{lora.name}' ({lora_id}) is missing")
        refs.append(
            LoraRef(
                lora_id=lora.id,
                path=lora.path,
                weight=weight,
                name=lora.name,
                trigger_word=lora.trigger_word,
                base=lora.base,
            )
        )
    return refs
