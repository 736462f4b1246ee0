"""Where a dataset image's files live in the data tree, named from its row: the original, its thumbnail and the
caption file beside the original. Every reader and writer of these files asks here."""

from __future__ import annotations

from pathlib import Path

from isengard.db.models import Image
from isengard.storage import DataTree


def original_path(data: DataTree, image: Image) -> Path:
    """The stored original: `DataTree.uploads(character_id) / image.filename`."""
    return data.uploads(image.character_id) / image.filename


def original_relative(image: Image) -> str:
    """The same file relative to the data tree, as a training run's dataset snapshot names it for the trainer."""
    return f"uploads/{image.character_id}/{image.filename}"


def thumbnail_path(data: DataTree, image: Image) -> Path:
    return data.thumbnails(image.character_id) / f"{image.id}.webp"


def caption_path(data: DataTree, image: Image) -> Path:
    """Same folder and stem as the stored original, extension `.txt`."""
    return original_path(data, image).with_suffix(".txt")
