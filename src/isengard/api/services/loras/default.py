"""A character's default LoRA: the one Generate attaches when the character is picked, the one the library marks,
and the one a character's name resolves to. One rule, here:

1. the LoRA the person chose (kept until they choose another or clear it; a chosen LoRA whose row or file is gone
   falls back to the automatic choice);
2. otherwise the recommended checkpoint of the character's newest run (evaluation.report picks it from the scored
   samples; it is the final LoRA when that is the pick), unless a LoRA was imported after that run;
3. otherwise its newest trained or imported LoRA.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session

from isengard.api.schemas.loras import DefaultReason
from isengard.api.support.rows import get_or_404, get_or_422
from isengard.db.models import Character, Lora
from isengard.evaluation.report import run_evaluation
from isengard.storage import DataTree


@dataclass(frozen=True)
class DefaultLora:
    lora: Lora | None
    reason: DefaultReason | None
    recommended_lora_id: str | None  # the newest run's recommended checkpoint, whether or not it is the default


def get_character(db: Session, character_id: str) -> Character:
    return get_or_404(db, Character, character_id, f"character {character_id} not found")


def default_lora(db: Session, data: DataTree, character: Character) -> DefaultLora:
    newest = _newest_usable(db, data, character.id, ("trained", "imported"))
    # The newest run's pick, found through its newest LoRA of any kind: its checkpoints still count once the final
    # LoRA is deleted, while a LoRA imported after the run is newer and has no pick, so it stays the default.
    recommended = _recommended(db, data, _newest_usable(db, data, character.id, ("trained", "imported", "checkpoint")))
    chosen = _usable(db, data, character.default_lora_id, character.id)
    recommended_id = recommended.id if recommended is not None else None
    if chosen is not None:
        return DefaultLora(chosen, "chosen", recommended_id)
    if recommended is not None:
        return DefaultLora(recommended, "recommended", recommended_id)
    if newest is not None:
        return DefaultLora(newest, "newest", None)
    return DefaultLora(None, None, None)


def choose_default(db: Session, data: DataTree, character: Character, lora_id: str | None) -> DefaultLora:
    """The person's choice (None: back to the automatic one). Only a LoRA of this character whose file is there."""
    if lora_id is not None:
        lora = get_or_422(db, Lora, lora_id, f"no LoRA with id '{lora_id}'")
        if lora.character_id != character.id:
            raise HTTPException(
                status_code=422, detail=f"LoRA '{lora.name}' is not one of {character.name}'s: pick one of its own"
            )
        if data.stored_file(lora.path) is None:
            raise HTTPException(status_code=422, detail=f"the file of LoRA '{lora.name}' ({lora_id}) is missing")
    character.default_lora_id = lora_id
    db.commit()
    return default_lora(db, data, character)


def defaults_of(db: Session, data: DataTree, character_ids: set[str]) -> dict[str, DefaultLora]:
    """Character id -> its default, for the characters a library page shows."""
    found = {}
    for character in db.scalars(select(Character).where(Character.id.in_(character_ids))):
        found[character.id] = default_lora(db, data, character)
    return found


def _usable(db: Session, data: DataTree, lora_id: str | None, character_id: str) -> Lora | None:
    if lora_id is None:
        return None
    lora = db.get(Lora, lora_id)
    if lora is None or lora.character_id != character_id or data.stored_file(lora.path) is None:
        return None
    return lora


def _newest_usable(db: Session, data: DataTree, character_id: str, sources: tuple[str, ...]) -> Lora | None:
    rows = db.scalars(
        select(Lora)
        .where(Lora.character_id == character_id, Lora.source.in_(sources))
        .order_by(Lora.created_at.desc(), Lora.id.desc())
        .limit(50)
    )
    return next((row for row in rows if data.stored_file(row.path) is not None), None)


def _recommended(db: Session, data: DataTree, latest: Lora | None) -> Lora | None:
    if latest is None or latest.job_id is None or latest.character_id is None:
        return None
    picked = run_evaluation(db, latest.job_id).recommended_lora_id
    return _usable(db, data, picked, latest.character_id)
