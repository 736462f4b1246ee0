"""Importing a LoRA made elsewhere: a checked safetensors file, converted to the diffusers layout, saved under
`data/loras/{character_id or "imported"}/imported/{lora_id}.safetensors` with a `loras` row (source "imported")."""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from safetensors.torch import save_file

from isengard.api.schemas.loras import LoraOut
from isengard.api.services.dataset.characters import referenced_character
from isengard.api.services.dataset.decode_limits import release_memory
from isengard.api.services.dataset.receiver import MultipartReceiver, ReceiveLimits
from isengard.api.services.loras.checks import check_lora_values, metadata_trigger_word
from isengard.api.services.loras.detect import BaseChoiceNeeded, BaseChoiceRefused, chosen_base, detect_base
from isengard.api.services.loras.files import read_lora_file
from isengard.api.services.loras.formats import LoraFormatError
from isengard.api.services.loras.library import to_out
from isengard.api.state import Services
from isengard.config import Mode, Settings
from isengard.db.models import Lora, new_id
from isengard.diskspace import require_free_space
from isengard.models.bases import BASES, UnknownBase, get_base
from isengard.storage import atomic_path

log = logging.getLogger(__name__)


@dataclass
class ImportOptions:
    name: str | None
    character_id: str | None
    trigger_word: str | None
    base: str | None = None  # the base the person says the file is for (asked when the file cannot tell)


def base_model_name(settings: Settings, base: str) -> str:
    """What the `base_model` field says: the base's Hugging Face repo (its tiny stand-in in fast-test)."""
    if base not in BASES:
        return "unknown base"
    if settings.resolved_mode == Mode.FAST_TEST:
        return f"isengard/tiny {base} (fast-test)"
    return BASES[base].repo_id


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
        reserve_space=lambda incoming: require_free_space(folder, incoming, settings.min_free_bytes),
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
            requested = get_base(options.base).name if options.base else None
        except UnknownBase as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        try:
            tensors, header = read_lora_file(upload)
            check_lora_values(tensors)
            detected = detect_base(settings, tensors, header)
            base = chosen_base(detected, requested)
        except (LoraFormatError, BaseChoiceRefused) as exc:
            raise HTTPException(status_code=422, detail=f"{original_name}: {exc}") from None
        except BaseChoiceNeeded as exc:
            raise BaseChoiceNeeded(f"{original_name}: {exc}", exc.candidates) from None
        converted = detected.converted
        lora_id = new_id()
        folder = services.data.loras(options.character_id or "imported") / "imported"
        target = folder / f"{lora_id}.safetensors"
        trigger = options.trigger_word or metadata_trigger_word(header)
        name = (options.name or "").strip() or Path(original_name).stem[:200] or "imported LoRA"
        metadata: dict[str, Any] = {
            "name": name,
            "source_format": converted.layout,
            "original_name": original_name,
            "base_model": base_model_name(settings, base),
            "base": base,
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
            base_model=base_model_name(settings, base),
            base=base,
            trigger_word=trigger or (character.trigger_word if character else None),
            bytes=target.stat().st_size,
            meta={
                "format": converted.layout,
                "original_name": original_name,
                "modules": converted.modules,
                "warnings": converted.warnings + detected.warnings,
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


@functools.cache
def _import_slots(count: int) -> threading.BoundedSemaphore:
    # One semaphore per configured count, shared by every request of the process.
    return threading.BoundedSemaphore(count)


@contextlib.contextmanager
def import_slot(count: int) -> Iterator[None]:
    """Hold one of the process' `count` import slots while a LoRA file is loaded and converted in memory."""
    with _import_slots(count):
        yield


def _import_in_slot(services: Services, upload: Path, original_name: str, options: ImportOptions) -> LoraOut:
    try:
        with import_slot(services.settings.max_concurrent_lora_imports):
            return import_lora(services, upload, original_name, options)
    finally:
        release_memory()


async def receive_and_import(services: Services, request: Request, options: ImportOptions) -> LoraOut:
    from starlette.concurrency import run_in_threadpool

    staging = services.data.tmp / f"lora-import-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        upload, original = await receive_upload(services, request, staging)
        return await run_in_threadpool(_import_in_slot, services, upload, original, options)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
