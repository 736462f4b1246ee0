"""Where a dataset image's files live in the data tree, named from its row: the original, its thumbnail and the
caption file beside the original. Every reader and writer of these files asks here."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from isengard.db.models import Image
from isengard.storage import DataTree


def original_path(data: DataTree, image: Image) -> Path:
    """The stored original: `DataTree.uploads(character_id) / image.filename`."""
    return data.uploads(image.character_id) / image.filename


def kept_original_path(data: DataTree, image: Image) -> Path:
    """Where the untouched upload waits while the photo is edited (`original_path` then holds the edit). A folder
    of its own: trainers that read the uploads folder (ai-toolkit, kohya_ss) must not see both versions."""
    return data.uploads(image.character_id) / "originals" / image.filename


def edit_tag(edit: dict[str, Any] | None) -> str | None:
    """A short name for a photo's edit (`Image.edit`; None: not edited): file URLs and cache tags change with it,
    so a browser never shows an edit it kept from before."""
    if not edit:
        return None
    text = json.dumps(edit, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def original_relative(image: Image) -> str:
    """The same file relative to the data tree, as a training run's dataset snapshot names it for the trainer."""
    return f"uploads/{image.character_id}/{image.filename}"


def thumbnail_path(data: DataTree, image: Image) -> Path:
    return data.thumbnails(image.character_id) / f"{image.id}.webp"


def caption_path(data: DataTree, image: Image) -> Path:
    """Same folder and stem as the stored original, extension `.txt`."""
    return original_path(data, image).with_suffix(".txt")
