"""The caption linter over one character's dataset, in upload order."""

from __future__ import annotations

from sqlalchemy.orm import Session

from isengard.api.schemas.captions import CaptionLintOut
from isengard.api.services.dataset.characters import get_character
from isengard.api.services.dataset.images import dataset_query
from isengard.captions.lint import CaptionedImage, CaptionFinding, lint_captions
from isengard.db.models import Image


def lint_images(images: list[Image], trigger_word: str, language: str) -> list[CaptionFinding]:
    return lint_captions([CaptionedImage(image.id, image.caption) for image in images], trigger_word, language)


def lint_dataset(db: Session, character_id: str, language: str) -> CaptionLintOut:
    character = get_character(db, character_id)
    images = list(db.scalars(dataset_query(character_id)))
    return CaptionLintOut(
        character_id=character.id,
        trigger_word=character.trigger_word,
        language=language,  # type: ignore[arg-type]
        images=len(images),
        findings=lint_images(images, character.trigger_word, language),
    )
