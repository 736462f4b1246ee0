"""Characters: create, list with counts, update, delete with their files; bulk caption edits."""

from __future__ import annotations

import logging
import re
import shutil
import unicodedata
from collections.abc import Sequence
from typing import Any

from anyascii import anyascii
from fastapi import HTTPException
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from isengard.api.schemas.characters import (
    BulkCaptionEdit,
    BulkCaptionOut,
    CharacterCreate,
    CharacterOut,
    CharacterUpdate,
    FindReplace,
    PrependTrigger,
)
from isengard.api.schemas.images import image_thumbnail_url
from isengard.api.services.dataset.images import dataset_query
from isengard.api.support.rows import get_or_404, get_or_422
from isengard.captions.trigger import MAX_CAPTION_CHARS, mentions_trigger, prepend_trigger, tidy_caption
from isengard.dataset.caption_files import mirror_committed_captions
from isengard.dataset.image_files import edit_tag
from isengard.db.models import Character, Image, Lora
from isengard.domain import utcnow
from isengard.jobs.states import detach_character
from isengard.storage import DataTree

log = logging.getLogger(__name__)


def name_key(name: str) -> str:
    """Case-insensitive identity of a name: the stored `name_key`, with a unique index. Compared after the same
    cleaning names get (NFC, no invisible characters), so names that look the same are the same name."""
    visible = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch) != "Cf")
    return visible.strip().lower()


def trigger_slug(name: str) -> str:
    """A trigger word from a name: ASCII, lower case, words joined by underscores ("Zoë Kim" -> "zoe_kim").

    Names in other scripts are transliterated ("李雷" -> "lilei", "Ёжик" -> "ezhik"), so every name has a
    default; one that gives no letters at all gives none ("").
    """
    ascii_name = anyascii(unicodedata.normalize("NFC", name))
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")[:100]
    return slug if re.search(r"[a-z]", slug) else ""


def get_character(db: Session, character_id: str) -> Character:
    return get_or_404(db, Character, character_id, f"character {character_id} not found")


def referenced_character(db: Session, character_id: str) -> Character:
    """The character a request body names (a generation, a training run, an imported LoRA); a 422 if none."""
    return get_or_422(db, Character, character_id, f"no character with id '{character_id}'")


def _name_taken(db: Session, key: str, except_id: str | None = None) -> Character | None:
    query = select(Character).where(Character.name_key == key)
    if except_id is not None:
        query = query.where(Character.id != except_id)
    return db.scalars(query).first()


def _conflict(name: str) -> HTTPException:
    return HTTPException(
        status_code=409, detail=f"a character named {name!r} already exists (names are compared ignoring case)"
    )


def create_character(db: Session, body: CharacterCreate) -> CharacterOut:
    key = name_key(body.name)
    if _name_taken(db, key):
        raise _conflict(body.name)
    trigger_word = body.trigger_word or trigger_slug(body.name)
    if not trigger_word:
        raise HTTPException(
            status_code=422,
            detail=f"the name {body.name!r} has no letters a-z to make a trigger word from: send a trigger_word",
        )
    character = Character(
        name=body.name,
        name_key=key,
        trigger_word=trigger_word,
        description=body.description,
    )
    db.add(character)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        if _name_taken(db, key):  # another request took the name between the check and the insert
            raise _conflict(body.name) from None
        raise  # refused for another reason: not the person's fault, a 500
    log.info("character created", extra={"character_id": character.id})
    return describe_characters(db, [character.id])[0]


def update_character(db: Session, character_id: str, body: CharacterUpdate) -> CharacterOut:
    character = get_character(db, character_id)
    if body.name is not None and body.name != character.name:
        key = name_key(body.name)
        if _name_taken(db, key, except_id=character.id):
            raise _conflict(body.name)
        character.name = body.name
        character.name_key = key
    if body.trigger_word is not None:
        character.trigger_word = body.trigger_word
    if body.description is not None:
        character.description = body.description
    character.updated_at = utcnow()
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        if body.name is not None and _name_taken(db, name_key(body.name), except_id=character_id):
            raise _conflict(body.name) from None
        raise  # refused for another reason: not the person's fault, a 500
    return describe_characters(db, [character.id])[0]


def describe_characters(db: Session, only_ids: Sequence[str] | None = None) -> list[CharacterOut]:
    """Characters with image and LoRA counts and a cover, in one query whatever their number."""
    # Correlated counts use the character_id indexes row by row, so describing one character does not count
    # every image in the database (a grouped subquery would scan them all).
    image_count = (
        select(func.count()).select_from(Image).where(Image.character_id == Character.id).correlate(Character)
    ).scalar_subquery()
    lora_count = (
        select(func.count()).select_from(Lora).where(Lora.character_id == Character.id).correlate(Character)
    ).scalar_subquery()
    # The newest image is the cover; the (character_id, created_at, id) index answers this per row.
    cover = (
        select(Image.id)
        .where(Image.character_id == Character.id)
        .order_by(Image.created_at.desc(), Image.id.desc())
        .limit(1)
        .correlate(Character)
        .scalar_subquery()
    )
    # Plain columns, not Character entities: building 1,000 ORM objects (identity map, instrumentation) cost
    # more than the SQL itself, and the response needs none of them.
    query = select(
        Character.id,
        Character.name,
        Character.trigger_word,
        Character.description,
        Character.created_at,
        Character.updated_at,
        image_count,
        lora_count,
        cover,
    ).order_by(Character.name_key)
    if only_ids is not None:
        query = query.where(Character.id.in_(list(only_ids)))
    rows = db.execute(query).all()
    # An edited cover has a thumbnail URL of its own (see image_files.edit_tag).
    cover_ids = [row[-1] for row in rows if row[-1]]
    edits: dict[str, dict[str, Any]] = {}
    if cover_ids:
        edits = dict(db.execute(select(Image.id, Image.edit).where(Image.id.in_(cover_ids))).tuples().all())
    return [
        CharacterOut(
            id=character_id,
            name=name,
            trigger_word=trigger_word,
            description=description,
            image_count=int(images),
            lora_count=int(loras),
            cover_url=image_thumbnail_url(cover_id, edit_tag(edits.get(cover_id))) if cover_id else None,
            created_at=created_at,
            updated_at=updated_at,
        )
        for (character_id, name, trigger_word, description, created_at, updated_at, images, loras, cover_id) in rows
    ]


def describe_character(db: Session, character_id: str) -> CharacterOut:
    found = describe_characters(db, [character_id])
    if not found:
        raise HTTPException(status_code=404, detail=f"character {character_id} not found")
    return found[0]


def delete_character(db: Session, data: DataTree, character_id: str) -> None:
    """Refused while a job of the character is queued or running; else its rows, then its folders, go."""
    character = get_character(db, character_id)
    active = detach_character(db, character_id)
    if active:
        raise HTTPException(
            status_code=409,
            detail=f"{character.name!r} has {active} queued or running job(s): cancel them or wait for them to finish",
        )
    folders = [data.uploads(character_id), data.thumbnails(character_id), data.loras(character_id)]
    folders.append(data.outputs(character_id))
    # Explicit deletes: the schema cascades too, but not every database enforces foreign keys the same way.
    db.execute(delete(Image).where(Image.character_id == character_id))
    db.execute(delete(Lora).where(Lora.character_id == character_id))
    db.delete(character)
    db.commit()
    # Files go after the rows: a crash in between leaves unreferenced files, never rows pointing at nothing.
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    log.info("character deleted", extra={"character_id": character_id})


def bulk_edit_captions(db: Session, data: DataTree, character_id: str, edit: BulkCaptionEdit) -> BulkCaptionOut:
    character = get_character(db, character_id)
    query = dataset_query(character_id)
    if edit.image_ids is not None:
        query = query.where(Image.id.in_(edit.image_ids))
    changed: list[Image] = []
    for image in db.scalars(query):
        new_caption = _edited(image.caption, edit, character.trigger_word)
        if new_caption != image.caption:
            if len(new_caption) > MAX_CAPTION_CHARS:
                # The limit a hand edit has holds for bulk edits too: nothing is changed, and the answer says where.
                db.rollback()
                raise HTTPException(
                    status_code=422,
                    detail=f"the edit would make the caption of image {image.original_name or image.id} "
                    f"{len(new_caption)} characters long (at most {MAX_CAPTION_CHARS}); nothing was changed",
                )
            image.caption = new_caption
            changed.append(image)
    db.commit()
    mirror_committed_captions(data, changed)
    return BulkCaptionOut(updated=len(changed), image_ids=[image.id for image in changed])


def _edited(caption: str, edit: BulkCaptionEdit, trigger_word: str) -> str:
    if isinstance(edit, FindReplace):
        if edit.case_sensitive:
            result = caption.replace(edit.find, edit.replace)
        else:
            result = re.sub(re.escape(edit.find), lambda _m: edit.replace, caption, flags=re.IGNORECASE)
        # Not cut at the limit: a replacement that makes a caption too long is refused by the caller.
        return tidy_caption(result)
    if isinstance(edit, PrependTrigger):
        return caption if mentions_trigger(caption, trigger_word) else prepend_trigger(caption)
    # SetMissing
    return caption if caption.strip() else tidy_caption(edit.caption)
