"""Named training configs people reuse: saved, listed, applied (as the base of a run's config) and deleted."""

from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from isengard.api.schemas.training import PresetCreate, PresetOut
from isengard.api.support.rows import get_or_404
from isengard.db.models import TrainingPreset
from isengard.models.bases import DEFAULT_BASE


def preset_to_out(preset: TrainingPreset) -> PresetOut:
    return PresetOut(
        id=preset.id, name=preset.name, plugin=preset.plugin, base=preset.base, config=preset.config or {},
        created_at=preset.created_at,
    )  # fmt: skip


def list_presets(db: Session, plugin: str | None = None) -> list[PresetOut]:
    query = select(TrainingPreset).order_by(TrainingPreset.name)
    if plugin:
        query = query.where(TrainingPreset.plugin == plugin)
    return [preset_to_out(p) for p in db.scalars(query).all()]


def get_preset(db: Session, preset_id: str) -> TrainingPreset:
    return get_or_404(db, TrainingPreset, preset_id, f"no training preset with id '{preset_id}'")


def create_preset(db: Session, body: PresetCreate, config: dict[str, object]) -> PresetOut:
    """Store `config` (already validated against the plugin by the caller) under a unique name."""
    name = body.name.strip()
    if not name:
        raise HTTPException(status_code=422, detail="a preset needs a name")
    if db.scalar(select(TrainingPreset).where(TrainingPreset.name == name)) is not None:
        raise HTTPException(status_code=409, detail=f"a preset named '{name}' exists already")
    preset = TrainingPreset(name=name, plugin=body.plugin, base=str(config.get("base") or DEFAULT_BASE), config=config)
    db.add(preset)
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        if db.scalar(select(TrainingPreset.id).where(TrainingPreset.name == name)) is not None:  # two saves at once
            raise HTTPException(status_code=409, detail=f"a preset named '{name}' exists already") from None
        raise  # refused for another reason: not the person's fault, a 500
    return preset_to_out(preset)


def delete_preset(db: Session, preset_id: str) -> None:
    db.delete(get_preset(db, preset_id))
