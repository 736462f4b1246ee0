"""Importing a LoRA made elsewhere: a checked safetensors file, converted to the diffusers layout, saved under
`data/loras/{character_id or "imported"}/imported/{lora_id}.safetensors` with a `loras` row (source "imported")."""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from safetensors.torch import save_file

from isengard.api.schemas.loras import LoraOut
from isengard.api.services.dataset.characters import referenced_character
from isengard.api.services.dataset.receiver import MultipartReceiver, ReceiveLimits
from isengard.api.services.loras.checks import check_lora_values, metadata_trigger_word
from isengard.api.services.loras.files import read_lora_file
from isengard.api.services.loras.formats import LoraFormatError, convert_to_diffusers, expected_shapes
from isengard.api.services.loras.library import to_out
from isengard.api.state import Services
from isengard.config import Mode, Settings
from isengard.db.models import Lora, new_id
from isengard.models.locate import base_model_dir
from isengard.storage import atomic_path

log = logging.getLogger(__name__)

TINY_BASE_MODEL_NAME = "isengard/tiny-flux (fast-test)"


@dataclass
class ImportOptions:
    name: str | None
    character_id: str | None
    trigger_word: str | None


def base_model_name(settings: Settings) -> str:
    return TINY_BASE_MODEL_NAME if settings.resolved_mode == Mode.FAST_TEST else settings.base_model


def base_transformer_shapes(settings: Settings) -> dict[str, tuple[int, int]]:
    """Layer shapes of the base model this installation generates with (FLUX.1-dev's when it is not local)."""
    folder = base_model_dir(settings)
    if folder is None and settings.resolved_mode == Mode.FAST_TEST:
        from isengard.models.tiny import ensure_tiny_model

        folder = ensure_tiny_model(settings)
    config_path = folder / "transformer" / "config.json" if folder else None
    if config_path is not None and config_path.is_file():
        return expected_shapes(json.loads(config_path.read_text()))
    return expected_shapes({})


async def receive_upload(services: Services, request: Request, folder: Path) -> tuple[Path, str]:
    """Stream the single `files` part to `folder`, bounded by ISENGARD_MAX_LORA_UPLOAD_BYTES."""
    limit = services.settings.max_lora_upload_bytes
    settings = services.settings
    limits = ReceiveLimits(
        max_file_bytes=limit,
        max_zip_bytes=limit,
        max_files=1,
        idle_timeout=settings.upload_idle_timeout_seconds,
        total_timeout=settings.upload_timeout_seconds,
    )
    receiver = MultipartReceiver(folder, limits)
    files = await receiver.receive(request)
    if not files:
        raise HTTPException(status_code=422, detail="send the LoRA as a multipart part named `files`")
    received = files[0]
    if received.rejected is not None:
        status = 413 if "larger than the limit" in received.rejected else 422
        raise HTTPException(status_code=status, detail=f"{received.original_name}: {received.rejected}")
    if len(files) > 1:
        raise HTTPException(status_code=422, detail="import one LoRA file per request")
    assert received.path is not None
    return received.path, received.original_name


def import_lora(services: Services, upload: Path, original_name: str, options: ImportOptions) -> LoraOut:
    """Check, convert and store an uploaded LoRA; a 422 that names the problem when it cannot be used."""
    settings = services.settings
    with services.sessions() as db:
        character = None
        if options.character_id is not None:
            character = referenced_character(db, options.character_id)
        try:
            tensors, header = read_lora_file(upload)
            check_lora_values(tensors)
            converted = convert_to_diffusers(tensors, base_transformer_shapes(settings))
        except LoraFormatError as exc:
            raise HTTPException(status_code=422, detail=f"{original_name}: {exc}") from None
        lora_id = new_id()
        folder = services.data.loras(options.character_id or "imported") / "imported"
        target = folder / f"{lora_id}.safetensors"
        trigger = options.trigger_word or metadata_trigger_word(header)
        name = (options.name or "").strip() or Path(original_name).stem[:200] or "imported LoRA"
        metadata: dict[str, Any] = {
            "name": name,
            "source_format": converted.layout,
            "original_name": original_name,
            "base_model": base_model_name(settings),
        }
        if trigger:
            metadata["trigger_word"] = trigger
        with atomic_path(target) as tmp:
            save_file(converted.state, str(tmp), metadata={k: str(v) for k, v in metadata.items()})
        lora = Lora(
            id=lora_id,
            character_id=options.character_id,
            job_id=None,
            name=name,
            path=services.data.relative(target),
            source="imported",
            rank=converted.rank,
            alpha=converted.alpha,
            base_model=base_model_name(settings),
            trigger_word=trigger or (character.trigger_word if character else None),
            bytes=target.stat().st_size,
            meta={
                "format": converted.layout,
                "original_name": original_name,
                "modules": converted.modules,
                "warnings": converted.warnings,
                "header": {k: v[:500] for k, v in list(header.items())[:50]},
            },
        )
        try:
            db.add(lora)
            db.commit()
        except Exception:
            target.unlink(missing_ok=True)  # no file without its row
            raise
        log.info("lora imported", extra={"lora_id": lora_id, "format": converted.layout, "modules": converted.modules})
        return to_out(db, services.data, lora, with_job=False)


async def receive_and_import(services: Services, request: Request, options: ImportOptions) -> LoraOut:
    from starlette.concurrency import run_in_threadpool

    staging = services.data.tmp / f"lora-import-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        upload, original = await receive_upload(services, request, staging)
        return await run_in_threadpool(import_lora, services, upload, original, options)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
