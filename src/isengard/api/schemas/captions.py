"""Request and response models of the caption routes: captioning plugins, caption jobs, the caption linter."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from isengard.api.schemas.characters import ImageId
from isengard.api.support.text import RequestModel
from isengard.captions.lint import CaptionFinding
from isengard.captions.style import CaptionLanguage, CaptionStyle
from isengard.plugins.api import Capability

CaptionScope = Literal["all", "empty", "selected"]
MAX_SELECTED_IMAGES = 1000


class CaptionPluginOut(BaseModel):
    name: str
    description: str
    capability: Capability
    config_schema: dict[str, Any] = Field(description="JSON schema of the plugin's `config`")


class CaptionJobCreate(RequestModel):
    """Caption a character's images: all of them, those without a caption, or the chosen ones."""

    model_config = ConfigDict(extra="forbid")

    plugin: str = "qwen-vl"
    scope: CaptionScope = "empty"
    image_ids: list[ImageId] = Field(
        default_factory=list, max_length=MAX_SELECTED_IMAGES, description="the images, for scope 'selected'"
    )
    overwrite: bool = Field(
        default=False, description="replace captions the images already have (otherwise those images are skipped)"
    )
    style: CaptionStyle = Field(default_factory=CaptionStyle)
    config: dict[str, Any] = Field(default_factory=dict, description="the plugin's own settings (see its schema)")


class CaptionLintOut(BaseModel):
    character_id: str
    trigger_word: str
    language: CaptionLanguage
    images: int
    findings: list[CaptionFinding]
