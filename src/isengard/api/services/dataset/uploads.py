"""Uploads: receive files (and zips of files), decode each for real, store the good ones, explain the rest.

Per file the outcome is `stored`, `duplicate` or `rejected` with a reason. Stored files get a name the server
makes (`uploads/{character_id}/{image_id}.{ext}`), a thumbnail and, when a caption came with them, a caption file
beside them (see `caption_files`); all are written atomically and removed again if the row cannot be committed,
so nothing half-written stays on disk. Everything a request received lives in a
private temporary folder under `data/tmp/` that is removed when the request ends, however it ends.

Exact duplicates are found by the SHA-256 of the decoded, normalized pixels (see `isengard.imaging`), so the same
photo sent again with other metadata or in another container is recognised; the unique index
(character_id, sha256) backs this up against two requests racing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from isengard.api.schemas.characters import UploadFileResult, UploadOut
from isengard.api.schemas.images import ImageOut
from isengard.api.services.dataset.archive import Candidate, ZipBudget, ZipLimits, ZipRejectedError, expand_zip
from isengard.api.services.dataset.characters import get_character
from isengard.api.services.dataset.decode_limits import PixelBudget, decode_slot, release_memory
from isengard.api.services.dataset.receiver import MultipartReceiver, ReceivedFile, ReceiveLimits
from isengard.api.state import Services
from isengard.captions.trigger import caption_from_bytes, is_blank_caption, normalize_caption
from isengard.config import Settings
from isengard.dataset.caption_files import mirror_committed_captions, write_caption_file
from isengard.dataset.image_files import caption_path, original_path, thumbnail_path
from isengard.db.models import Character, Image, new_id
from isengard.diskspace import require_free_space
from isengard.imaging import (
    NEAR_DUPLICATE_MAX_DISTANCE,
    ImageRejectedError,
    analysis_gray,
    blur_score,
    declared_pixels,
    decode_image,
    dhash,
    encode_flags,
    hamming_distance,
    make_thumbnail,
    pixel_sha256,
    quality_flags,
    save_image,
    stored_extension,
)
from isengard.storage import DataTree

log = logging.getLogger(__name__)

MAX_CAPTION_FILE_BYTES = 64 * 1024


@dataclass
class DatasetIndex:
    """What the character already holds, to find duplicates without a query per file."""

    by_sha: dict[str, str] = field(default_factory=dict)
    hashes: list[tuple[str, str]] = field(default_factory=list)  # (image id, dhash), oldest first

    @classmethod
    def load(cls, db: Session, character_id: str) -> DatasetIndex:
        index = cls()
        rows = db.execute(
            select(Image.id, Image.sha256, Image.phash)
            .where(Image.character_id == character_id)
            .order_by(Image.created_at, Image.id)
        )
        for image_id, sha, phash in rows:
            index.add(image_id, sha, phash)
        return index

    def add(self, image_id: str, sha: str, phash: str) -> None:
        self.by_sha[sha] = image_id
        if phash:
            self.hashes.append((image_id, phash))

    def near_duplicate_of(self, phash: str) -> str | None:
        """The closest earlier image within the near-duplicate distance, if any."""
        best: tuple[int, str] | None = None
        for image_id, other in self.hashes:
            distance = hamming_distance(phash, other)
            if distance <= NEAR_DUPLICATE_MAX_DISTANCE and (best is None or distance < best[0]):
                best = (distance, image_id)
        return best[1] if best else None


STORE_FAILED = "the server could not store this image; the server log has the details"


def upload_status_code(result: UploadOut) -> int:
    """201 when something was stored, 200 when only duplicates came; when nothing was: 500 if the server failed to
    store a file (a write it could not make is never a person's error), else 422 (every file was refused)."""
    if result.stored:
        return 201
    if result.duplicates:
        return 200
    return 500 if result.failed else 422


async def receive_upload(request: Request, db: Session, services: Services, character_id: str) -> UploadOut:
    settings = services.settings
    # 404 before reading a byte of the body, in a session of its own: `db` takes its connection only once the
    # whole body is here, so slow clients cannot hold the pool.
    await run_in_threadpool(_require_character, services, character_id)
    services.data.tmp.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="upload-", dir=services.data.tmp))
    try:
        receiver = MultipartReceiver(
            work,
            ReceiveLimits(
                max_file_bytes=settings.max_upload_bytes,
                max_zip_bytes=max(settings.max_upload_bytes, settings.max_zip_uncompressed_bytes),
                max_files=settings.max_files_per_request,
                idle_timeout=settings.upload_idle_timeout_seconds,
                total_timeout=settings.upload_timeout_seconds,
                reserve_space=lambda incoming: require_free_space(work, incoming, settings.min_free_bytes),
            ),
        )
        received = await receiver.receive(request)
        return await run_in_threadpool(store_received, db, services.data, settings, character_id, received, work)
    finally:
        await run_in_threadpool(shutil.rmtree, work, True)
        release_memory()


def _require_character(services: Services, character_id: str) -> None:
    with services.sessions() as session:
        get_character(session, character_id)


def store_received(
    db: Session, data: DataTree, settings: Settings, character_id: str, received: list[ReceivedFile], work: Path
) -> UploadOut:
    character = get_character(db, character_id)
    candidates = _candidates(received, work, settings)
    captions, caption_files = _read_captions(candidates)
    index = DatasetIndex.load(db, character.id)
    budget = PixelBudget(settings.max_request_pixels)
    results: list[UploadFileResult] = []
    used_captions: set[tuple[str, str]] = set()
    for candidate in candidates:
        if candidate.is_caption_file and candidate.rejected is None:
            continue
        caption = captions.get(candidate.stem_key, "")
        if candidate.stem_key in captions and not candidate.is_caption_file:
            used_captions.add(candidate.stem_key)
        results.append(_store_one(db, data, settings, character, candidate, caption, index, budget))
    for key, candidate in caption_files.items():
        if key not in used_captions:
            results.append(
                UploadFileResult(
                    name=candidate.name, status="rejected", reason="caption file matches no image in this upload"
                )
            )
    stored = sum(1 for r in results if r.status == "stored")
    duplicates = sum(1 for r in results if r.status == "duplicate")
    rejected = sum(1 for r in results if r.status == "rejected")
    failed = sum(1 for r in results if r.status == "rejected" and r.reason == STORE_FAILED)
    if not results:
        detail = "no files in the request: send one or more parts named `files`"
    elif stored == 0 and duplicates == 0:
        detail = f"none of the {len(results)} file(s) could be stored: see each file's reason"
    else:
        detail = f"{stored} stored, {duplicates} duplicate(s), {rejected} rejected"
    log.info(
        "upload handled",
        extra={"character_id": character.id, "stored": stored, "duplicates": duplicates, "rejected": rejected},
    )
    return UploadOut(
        detail=detail, stored=stored, duplicates=duplicates, rejected=rejected, failed=failed, results=results
    )


def _candidates(received: list[ReceivedFile], work: Path, settings: Settings) -> list[Candidate]:
    limits = ZipLimits(
        max_entries=settings.max_zip_entries,
        max_uncompressed_bytes=settings.max_zip_uncompressed_bytes,
        max_entry_bytes=settings.max_upload_bytes,
    )
    # One budget for every archive of the request: four archives do not get four times the limit.
    budget = ZipBudget.of(limits, lambda incoming: require_free_space(work, incoming, settings.min_free_bytes))
    candidates: list[Candidate] = []
    for number, part in enumerate(received):
        plain = Candidate(
            name=part.original_name,
            original_name=part.original_name,
            group="",
            path=part.path,
            size=part.size,
            rejected=part.rejected,
        )
        if part.rejected is not None or part.path is None or not part.looks_like_zip:
            candidates.append(plain)
            continue
        try:
            candidates.extend(
                expand_zip(part.path, part.original_name, work, limits, prefix=f"zip-{number:05d}", budget=budget)
            )
        except ZipRejectedError as exc:
            plain.rejected = str(exc)
            candidates.append(plain)
        finally:
            # The archive itself is no longer needed; free the space before decoding its images.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part.path)
    return candidates


def _read_captions(candidates: list[Candidate]) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], Candidate]]:
    captions: dict[tuple[str, str], str] = {}
    files: dict[tuple[str, str], Candidate] = {}
    for candidate in candidates:
        if not candidate.is_caption_file or candidate.rejected is not None or candidate.path is None:
            continue
        if candidate.size > MAX_CAPTION_FILE_BYTES:
            candidate.rejected = f"caption file is larger than {MAX_CAPTION_FILE_BYTES // 1024} KB"
            continue
        captions[candidate.stem_key] = caption_from_bytes(candidate.path.read_bytes())
        files[candidate.stem_key] = candidate
    return captions, files


def _store_one(
    db: Session,
    data: DataTree,
    settings: Settings,
    character: Character,
    candidate: Candidate,
    caption: str,
    index: DatasetIndex,
    budget: PixelBudget,
) -> UploadFileResult:
    def rejected(reason: str) -> UploadFileResult:
        return UploadFileResult(name=candidate.name, status="rejected", reason=reason)

    if candidate.rejected is not None:
        return rejected(candidate.rejected)
    if candidate.path is None or candidate.size == 0:
        return rejected("the file is empty")
    over_budget = budget.take(declared_pixels(candidate.path))
    if over_budget is not None:
        return rejected(over_budget)
    with decode_slot(settings.max_concurrent_decodes):
        return _decode_and_store(db, data, settings, character, candidate, caption, index)


def _decode_and_store(
    db: Session,
    data: DataTree,
    settings: Settings,
    character: Character,
    candidate: Candidate,
    caption: str,
    index: DatasetIndex,
) -> UploadFileResult:
    def rejected(reason: str) -> UploadFileResult:
        return UploadFileResult(name=candidate.name, status="rejected", reason=reason)

    def could_not_store() -> UploadFileResult:
        log.exception("could not store an uploaded image", extra={"character_id": character.id})
        return rejected(STORE_FAILED)

    assert candidate.path is not None
    try:
        decoded = decode_image(candidate.path, max_pixels=settings.max_image_pixels)
    except ImageRejectedError as exc:
        return rejected(str(exc))
    image = decoded.image
    sha = pixel_sha256(image)
    if sha in index.by_sha:
        return UploadFileResult(
            name=candidate.name,
            status="duplicate",
            reason="the same image is already in this character's dataset"
            + _caption_to_kept(db, data, character, index.by_sha[sha], caption),
            duplicate_of=index.by_sha[sha],
        )
    gray = analysis_gray(image)  # one small copy serves both measures
    phash = dhash(gray)
    near = index.near_duplicate_of(phash)
    blur = blur_score(gray)
    flags = quality_flags(image.width, image.height, blur, near_duplicate=near is not None)
    image_id = new_id()
    extension, pil_format = stored_extension(decoded.source_format, image)
    row = Image(
        id=image_id,
        character_id=character.id,
        filename=f"{image_id}.{extension}",
        original_name=candidate.original_name,
        format=pil_format,
        width=image.width,
        height=image.height,
        sha256=sha,
        phash=phash,
        blur_score=blur,
        caption=caption,
        flags=encode_flags(flags),
        near_duplicate_of=near,
    )
    target, thumbnail, caption_file = original_path(data, row), thumbnail_path(data, row), caption_path(data, row)
    try:
        save_image(image, target, pil_format)
        make_thumbnail(image, thumbnail)
        row.bytes = target.stat().st_size
        # Written before the commit, like the image itself, so a failed commit removes it with the rest.
        write_caption_file(data, row)
        db.add(row)
        db.commit()
    except IntegrityError:
        db.rollback()
        _remove(target, thumbnail, caption_file)
        existing = db.scalar(select(Image.id).where(Image.character_id == character.id, Image.sha256 == sha))
        if existing is None:  # refused for another reason than the same image arriving through another request
            return could_not_store()
        return UploadFileResult(
            name=candidate.name,
            status="duplicate",
            reason="the same image is already in this character's dataset",
            duplicate_of=existing,
        )
    except Exception:
        db.rollback()
        _remove(target, thumbnail, caption_file)
        return could_not_store()
    index.add(image_id, sha, phash)
    return UploadFileResult(name=candidate.name, status="stored", image=ImageOut.from_row(row))


def _caption_to_kept(db: Session, data: DataTree, character: Character, kept_id: str, caption: str) -> str:
    """A duplicate's caption is not dropped silently: it goes to the kept image when that one has none (or only a
    placeholder); otherwise the upload says it was not used. Returns what to add to the duplicate's reason."""
    if not caption.strip():
        return ""
    kept = db.get(Image, kept_id)
    if kept is None:
        return ""
    if kept.caption.strip() == caption.strip():
        return f"; {kept.original_name} has the same caption"
    if not is_blank_caption(kept.caption, character.trigger_word):
        return f"; its caption was not used: {kept.original_name} keeps its own"
    kept.caption = normalize_caption(caption)
    db.commit()
    mirror_committed_captions(data, [kept])
    return f"; its caption now belongs to {kept.original_name}"


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
