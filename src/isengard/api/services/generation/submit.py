"""Submitting generation jobs: validating a request against the plugin, resolving LoRA ids and the trigger word."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import HTTPException
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from isengard.api.schemas.generation import GenerationCreate, GridCreate, ImagePluginOut, LoraSelection
from isengard.api.services.bases import ensure_base_installed, ensure_distilled_installed, generation_base
from isengard.api.services.dataset.characters import referenced_character
from isengard.api.services.jobs.availability import ensure_runnable, listed_plugins, plugin_of_kind
from isengard.api.services.jobs.manage import submit_job
from isengard.api.services.loras.library import resolve_lora_refs
from isengard.api.state import Services
from isengard.api.support.rows import get_or_422
from isengard.api.support.validation_errors import readable_errors
from isengard.db.models import Job, Lora
from isengard.domain import JobKind, LoraRef, PluginKind
from isengard.jobs.states import Submission
from isengard.plugins.image.interface import ImagePlugin
from isengard.plugins.image.request import MAX_GRID_CELLS

log = logging.getLogger(__name__)

MAX_GRID_COLUMNS = 12


def list_image_plugins(services: Services) -> list[ImagePluginOut]:
    return [
        ImagePluginOut(**p.described(), request_schema=p.schema(lambda cls: cls.request_model.model_json_schema()))
        for p in listed_plugins(services, PluginKind.IMAGE, ImagePlugin)
    ]


def usable_image_plugin(services: Services, name: str, *, grid: bool = False) -> ImagePlugin:
    plugin = plugin_of_kind(services, PluginKind.IMAGE, name, ImagePlugin)
    capability = ensure_runnable(services, PluginKind.IMAGE, name)
    if grid and not capability.details.get("grid", False):
        raise HTTPException(status_code=422, detail=f"image plugin '{name}' cannot render comparison grids")
    return plugin


def _refs(services: Services, db: Session, selections: list[LoraSelection]) -> list[LoraRef]:
    return resolve_lora_refs(db, services.data, [(s.lora_id, s.weight) for s in selections])


def _owner_and_trigger(db: Session, character_id: str | None, refs: list[LoraRef]) -> tuple[str | None, str | None]:
    """The character the images belong to (given, or that of the first LoRA) and its trigger word."""
    if character_id is None and refs:
        first = db.get(Lora, refs[0].lora_id)
        character_id = first.character_id if first is not None else None
    character = referenced_character(db, character_id) if character_id is not None else None
    if character is not None:
        return character.id, character.trigger_word
    return None, next((ref.trigger_word for ref in refs if ref.trigger_word), None)


def validated_image_payload(plugin: ImagePlugin, payload: dict[str, Any]) -> dict[str, Any]:
    try:
        request = plugin.request_model.model_validate(payload)
    except ValidationError as exc:
        raise HTTPException(status_code=422, detail=readable_errors(exc, limit=1)) from None
    return request.model_dump(mode="json")


def _base(services: Services, refs: list[LoraRef], body: GenerationCreate | GridCreate) -> str:
    """The base the images are made with: the LoRAs' (one base only), installed here with the checkpoint asked
    for; else a 422 that says why."""
    base = generation_base([(ref.name, ref.base) for ref in refs], body.base)
    spec = ensure_base_installed(services.settings, base, what="this generation")
    if body.checkpoint == "distilled":
        ensure_distilled_installed(services.settings, spec)
    return base


def _sampling(body: GenerationCreate | GridCreate) -> dict[str, Any]:
    """Steps and guidance as asked; left out when not asked on a distilled checkpoint, whose own come from the
    registry (the request model fills them)."""
    values = {"steps": body.steps, "guidance": body.guidance}
    if body.checkpoint == "distilled":
        return {key: value for key, value in values.items() if key in body.model_fields_set}
    return values


def submit_generation(services: Services, db: Session, body: GenerationCreate) -> Job:
    plugin = usable_image_plugin(services, body.plugin)
    refs = _refs(services, db, body.loras)
    base = _base(services, refs, body)
    character_id, trigger = _owner_and_trigger(db, body.character_id, refs)
    payload = validated_image_payload(
        plugin,
        {
            "prompt": body.prompt,
            "width": body.width,
            "height": body.height,
            "seed": body.seed,
            "num_images": body.num_images,
            "loras": [ref.model_dump() for ref in refs],
            "character_id": character_id,
            "trigger_word": trigger,
            "add_trigger_word": body.add_trigger_word,
            "workflow": body.workflow,
            "base": base,
            "checkpoint": body.checkpoint,
        }
        | _sampling(body),
    )
    config = {k: payload[k] for k in ("width", "height", "steps", "guidance", "seed", "num_images")}
    name = body.name.strip() or body.prompt.strip()[:80]
    submission = Submission(
        JobKind.GENERATION, body.plugin, payload, config, name, character_id=character_id, base=base
    )
    return submit_job(services, db, submission)


def _run_columns(db: Session, job_id: str, weight: float) -> list[dict[str, Any]]:
    """One column per LoRA of a training run, checkpoints by step, the final LoRA last; evenly thinned if many."""
    get_or_422(db, Job, job_id, f"no job with id '{job_id}'")
    rows = list(db.scalars(select(Lora).where(Lora.job_id == job_id)))
    if not rows:
        raise HTTPException(status_code=422, detail=f"job '{job_id}' has no LoRAs or checkpoints yet")
    rows.sort(key=lambda row: (row.source != "checkpoint", row.step or 0))
    if len(rows) > MAX_GRID_COLUMNS:
        last = len(rows) - 1
        picks = sorted({round(i * last / (MAX_GRID_COLUMNS - 1)) for i in range(MAX_GRID_COLUMNS)})
        rows = [rows[i] for i in picks]
    return [
        {
            "label": f"step {row.step}" if row.source == "checkpoint" and row.step is not None else row.name,
            "loras": [LoraSelection(lora_id=row.id, weight=weight)],
        }
        for row in rows
    ]


def submit_grid(services: Services, db: Session, body: GridCreate) -> Job:
    plugin = usable_image_plugin(services, body.plugin, grid=True)
    columns: list[dict[str, Any]] = [{"label": "base", "loras": []}] if body.include_base else []
    columns += [{"label": c.label, "loras": c.loras} for c in body.columns]
    if body.job_id:
        columns += _run_columns(db, body.job_id, body.weight)
    cells = len(body.prompts) * len(body.seeds) * len(columns)
    if cells > MAX_GRID_CELLS:
        raise HTTPException(status_code=422, detail=f"the grid would have {cells} images: at most {MAX_GRID_CELLS}")
    column_refs = [(column["label"], _refs(services, db, column["loras"])) for column in columns]
    all_refs = [ref for _, refs in column_refs for ref in refs]
    base = _base(services, all_refs, body)
    character_id, trigger = _owner_and_trigger(db, body.character_id, all_refs)
    resolved = [{"label": label, "loras": [ref.model_dump() for ref in refs]} for label, refs in column_refs]
    payload = validated_image_payload(
        plugin,
        {
            "width": body.width,
            "height": body.height,
            "character_id": character_id,
            "trigger_word": trigger,
            "add_trigger_word": body.add_trigger_word,
            "workflow": body.workflow,
            "grid": {"prompts": body.prompts, "seeds": body.seeds, "columns": resolved},
            "base": base,
            "checkpoint": body.checkpoint,
        }
        | _sampling(body),
    )
    config = {"width": body.width, "height": body.height, "steps": payload["steps"], "cells": cells}
    name = body.name.strip() or f"grid: {len(columns)} LoRAs x {len(body.prompts) * len(body.seeds)} rows"
    submission = Submission(
        JobKind.GENERATION, body.plugin, payload, config, name, character_id=character_id, base=base
    )
    return submit_job(services, db, submission)
