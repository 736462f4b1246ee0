"""Request and response models of the training routes: plugins, submission, estimates and presets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from isengard.api.support.text import RequestModel, column_max_length
from isengard.db.models import TrainingPreset
from isengard.models.memory_plan import MemoryPlan
from isengard.plugins.api import Capability


class TrainingPluginOut(BaseModel):
    name: str
    description: str
    capability: Capability
    config_schema: dict[str, Any] = Field(description="JSON schema of the plugin's config (the form to render)")
    defaults: dict[str, Any] = Field(
        description="the config a run gets for every field left out (with `base_defaults` of its base on top)"
    )
    base_defaults: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per base: the recommended values of this engine's fields for a run on it, which a run on that "
        "base gets for the fields left out (the training form applies them to the fields a person has not changed "
        "when the base changes)",
    )


class TrainingCreate(RequestModel):
    character_id: str = Field(min_length=1, max_length=32)
    plugin: str = Field(default="flux-lora", min_length=1, max_length=100)
    config: dict[str, Any] = Field(default_factory=dict, description="fields to change from the plugin's defaults")
    preset_id: str | None = Field(
        default=None, max_length=32, description="start from this preset's config; `config` overrides it"
    )
    name: str = Field(default="", max_length=200)


class TrainingEstimate(BaseModel):
    plugin: str
    config: dict[str, Any] = Field(description="the complete config the run would use")
    images: int
    examples: int = Field(description="training examples: each image once per usable resolution")
    steps: int
    epochs: float = Field(description="how many times each example is seen")
    seconds_per_step: float
    estimated_seconds: float
    basis: str = Field(description="what the time estimate assumes")
    warnings: list[str] = Field(default_factory=list)
    memory_summary: str | None = Field(
        default=None, description="whether the run fits the workers' GPU, with which profile and its estimated peak"
    )
    memory_plan: MemoryPlan | None = Field(default=None, description="each memory profile's estimate on that GPU")


class PresetCreate(RequestModel):
    name: str = Field(min_length=1, max_length=column_max_length(TrainingPreset.name))
    plugin: str = Field(default="flux-lora", min_length=1, max_length=100)
    config: dict[str, Any] = Field(default_factory=dict)


class PresetOut(BaseModel):
    id: str
    name: str
    plugin: str
    base: str = Field(description="the base model the preset trains on")
    config: dict[str, Any]
    created_at: datetime


MAX_SETTINGS_FILE_CHARS = 64_000


class SettingsImport(BaseModel):
    """The text of a settings file (YAML) as exported by Isengard, or written by hand."""

    text: str = Field(min_length=1, max_length=MAX_SETTINGS_FILE_CHARS)


class SettingsFile(BaseModel):
    """A settings file, validated: the plugin, the name it was saved under, and the complete config it gives."""

    plugin: str
    name: str = ""
    config: dict[str, Any]
