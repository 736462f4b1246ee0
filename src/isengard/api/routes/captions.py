"""Routes for captions: captioning plugins, automatic caption jobs over a character's dataset, the caption linter."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from isengard.api.deps import DbSession, ServicesDep
from isengard.api.ratelimit import rate_limited
from isengard.api.schemas.captions import CaptionJobCreate, CaptionLintOut, CaptionPluginOut
from isengard.api.schemas.jobs import JobOut
from isengard.api.services.captions.jobs import list_caption_plugins, submit_caption_job
from isengard.api.services.captions.lint import lint_dataset
from isengard.api.support.params import path_id
from isengard.captions.style import CaptionLanguage

router = APIRouter(tags=["captions"])

CharacterId = Annotated[str, path_id("character")]


@router.get("/captions/plugins")
def caption_plugins(services: ServicesDep) -> list[CaptionPluginOut]:
    return list_caption_plugins(services)


@router.post(
    "/characters/{character_id}/captions/auto",
    status_code=202,
    dependencies=[Depends(rate_limited("generation"))],
)
def caption_dataset(services: ServicesDep, db: DbSession, character_id: CharacterId, body: CaptionJobCreate) -> JobOut:
    """Queue a caption job: the worker captions the chosen images and stores each caption as a hand edit is."""
    return JobOut.from_row(submit_caption_job(services, db, character_id, body))


@router.get("/characters/{character_id}/captions/lint")
def lint_captions(
    db: DbSession,
    character_id: CharacterId,
    language: Annotated[CaptionLanguage, Query(description="the captions' language")] = "en",
) -> CaptionLintOut:
    return lint_dataset(db, character_id, language)
