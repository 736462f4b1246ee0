"""Submitting caption jobs: which images, the plugin and its config checked, the payload snapshotted."""

from __future__ import annotations

from fastapi import HTTPException
from pydantic import ValidationError
from sqlalchemy.orm import Session

from isengard.api.schemas.captions import CaptionJobCreate, CaptionPluginOut
from isengard.api.services.dataset.characters import get_character
from isengard.api.services.dataset.images import dataset_query
from isengard.api.services.jobs.availability import ensure_runnable, listed_plugins, plugin_of_kind
from isengard.api.services.jobs.manage import submit_job
from isengard.api.state import Services
from isengard.api.support.validation_errors import readable_errors
from isengard.captions.trigger import is_blank_caption
from isengard.dataset.image_files import original_relative
from isengard.db.models import Character, Image, Job
from isengard.domain import JobKind, PluginKind
from isengard.jobs.states import Submission
from isengard.plugins.caption.interface import CaptionJob, CaptionPlugin, CaptionTarget


def list_caption_plugins(services: Services) -> list[CaptionPluginOut]:
    return [
        CaptionPluginOut(**p.described(), config_schema=p.schema(lambda cls: cls.config_model.model_json_schema()))
        for p in listed_plugins(services, PluginKind.CAPTION, CaptionPlugin)
    ]


def _usable_plugin(services: Services, name: str) -> CaptionPlugin:
    plugin = plugin_of_kind(services, PluginKind.CAPTION, name, CaptionPlugin)
    ensure_runnable(services, PluginKind.CAPTION, name)
    return plugin


def _chosen_images(db: Session, character: Character, body: CaptionJobCreate) -> list[Image]:
    images = list(db.scalars(dataset_query(character.id)))
    if body.scope == "empty":
        return [image for image in images if is_blank_caption(image.caption, character.trigger_word)]
    if body.scope == "all":
        return images
    if not body.image_ids:
        raise HTTPException(status_code=422, detail="scope 'selected' needs image_ids: the images to caption")
    by_id = {image.id: image for image in images}
    unknown = [image_id for image_id in dict.fromkeys(body.image_ids) if image_id not in by_id]
    if unknown:
        raise HTTPException(
            status_code=422, detail=f"not images of this character: {', '.join(unknown[:5])}"
        )  # fmt: skip
    return [by_id[image_id] for image_id in dict.fromkeys(body.image_ids)]


def submit_caption_job(services: Services, db: Session, character_id: str, body: CaptionJobCreate) -> Job:
    """Queue a caption job over the chosen images; those with a caption are left out unless `overwrite`."""
    character = get_character(db, character_id)
    plugin = _usable_plugin(services, body.plugin)
    try:
        config = plugin.validate_config(body.config).model_dump(mode="json")
    except ValidationError as exc:
        raise HTTPException(status_code=422, detail=readable_errors(exc, prefix="config")) from None
    chosen = _chosen_images(db, character, body)
    # A placeholder ("a photo of [trigger]") counts as empty: captioning it loses nothing a person wrote.
    blank = [image for image in chosen if is_blank_caption(image.caption, character.trigger_word)]
    targets = chosen if body.overwrite else blank
    if not targets:
        if body.scope == "empty":
            reason = "every image already has a caption"
        elif not chosen:
            reason = "the character has no images"
        else:
            reason = "every chosen image already has a caption (set overwrite to replace them)"
        raise HTTPException(status_code=422, detail=f"nothing to caption: {reason}")
    payload = CaptionJob(
        character_id=character.id,
        images=[
            CaptionTarget(
                image_id=image.id,
                image_path=original_relative(image),
                replaces=image.caption if image in blank and image.caption.strip() else "",
            )
            for image in targets
        ],
        style=body.style,
        overwrite=body.overwrite,
        config=config,
    ).model_dump(mode="json")
    summary = {
        "scope": body.scope,
        "overwrite": body.overwrite,
        "images": len(targets),
        "kept": len(chosen) - len(targets),
        "style": body.style.model_dump(mode="json"),
        **config,
    }
    name = f"captions: {character.name} ({len(targets)} images)"
    submission = Submission(JobKind.CAPTION, body.plugin, payload, summary, name, character_id=character.id)
    return submit_job(services, db, submission)
