"""Request and response models of the generation routes and the gallery."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from isengard.api.support.text import NoNul, RequestModel
from isengard.db.models import Generation
from isengard.domain import MAX_LORA_WEIGHT
from isengard.plugins.api import Capability
from isengard.plugins.image.request import (
    MAX_GRID_CELLS,
    MAX_IMAGES,
    MAX_SEED,
    MAX_SIDE,
    MAX_STEPS,
    MIN_SIDE,
    Checkpoint,
)

# One bound for every prompt, a single generation's and each of a grid's.
MAX_PROMPT_CHARS = 4000
Prompt = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROMPT_CHARS), NoNul]


class LoraSelection(RequestModel):
    lora_id: str = Field(min_length=1, max_length=32)
    weight: float = Field(default=1.0, ge=-MAX_LORA_WEIGHT, le=MAX_LORA_WEIGHT)


class _RenderSettings(RequestModel):
    plugin: str = Field(default="diffusers", max_length=100)
    character_id: str | None = Field(default=None, max_length=32)
    width: int = Field(default=1024, ge=MIN_SIDE, le=MAX_SIDE)
    height: int = Field(default=1024, ge=MIN_SIDE, le=MAX_SIDE)
    steps: int = Field(default=28, ge=1, le=MAX_STEPS)
    guidance: float = Field(default=3.5, ge=0.0, le=30.0)
    add_trigger_word: bool = Field(default=True, description="prefix the character's trigger word when missing")
    workflow: str | None = Field(default=None, max_length=200, description="ComfyUI workflow template name")
    name: str = Field(default="", max_length=200)
    base: str | None = Field(
        default=None, max_length=40, description="the base model; that of the LoRAs when absent (they must agree)"
    )
    checkpoint: Checkpoint = Field(
        default="base",
        description="'distilled': the base's distilled sibling (FLUX.2 [klein]), where LoRAs trained on the base "
        "apply; its step count and guidance from the base registry unless given",
    )


class GenerationCreate(_RenderSettings):
    prompt: Prompt
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description="random when absent; always recorded")
    num_images: int = Field(default=1, ge=1, le=MAX_IMAGES)
    loras: list[LoraSelection] = Field(default_factory=list, max_length=4)


class GridColumnCreate(RequestModel):
    label: str = Field(default="", max_length=80)
    loras: list[LoraSelection] = Field(default_factory=list, max_length=4)


class GridCreate(_RenderSettings):
    """Prompts x seeds (rows) by LoRA variants (columns); `job_id` fills the columns with a run's LoRAs."""

    prompts: list[Prompt] = Field(min_length=1, max_length=8)
    seeds: list[int] = Field(min_length=1, max_length=8)
    columns: list[GridColumnCreate] = Field(default_factory=list, max_length=12)
    job_id: str | None = Field(default=None, max_length=32, description="use every LoRA and checkpoint of this run")
    include_base: bool = Field(default=False, description="add a column without any LoRA")
    weight: float = Field(
        default=1.0, ge=-MAX_LORA_WEIGHT, le=MAX_LORA_WEIGHT, description="weight of the run's LoRAs (with job_id)"
    )
    width: int = Field(default=512, ge=MIN_SIDE, le=MAX_SIDE)
    height: int = Field(default=512, ge=MIN_SIDE, le=MAX_SIDE)

    @model_validator(mode="after")
    def _has_columns(self) -> GridCreate:
        if not self.columns and not self.job_id and not self.include_base:
            raise ValueError("give columns, a job_id whose LoRAs make the columns, or include_base")
        if any(not 0 <= seed <= MAX_SEED for seed in self.seeds):
            raise ValueError(f"seeds must be between 0 and {MAX_SEED}")
        columns = len(self.columns) + int(self.include_base)
        if self.columns and len(self.prompts) * len(self.seeds) * columns > MAX_GRID_CELLS:
            raise ValueError(f"the grid has more than {MAX_GRID_CELLS} images")
        return self


class ImagePluginOut(BaseModel):
    name: str
    description: str
    capability: Capability
    request_schema: dict[str, Any]


def generation_file_url(generation_id: str) -> str:
    return f"/api/generations/{generation_id}/file"


class AppliedLora(BaseModel):
    """A LoRA an image was generated with, as recorded with the image (other recorded keys pass through)."""

    model_config = ConfigDict(extra="allow")
    lora_id: str
    weight: float = 1.0
    name: str = ""


class GenerationOut(BaseModel):
    id: str
    job_id: str | None
    character_id: str | None
    kind: str  # "image" or "grid"
    prompt: str
    seed: int
    width: int
    height: int
    steps: int
    guidance: float
    plugin: str
    loras: list[AppliedLora]
    params: dict[str, Any]
    created_at: datetime
    url: str
    thumbnail_url: str | None

    @classmethod
    def from_row(cls, row: Generation) -> GenerationOut:
        params = row.params or {}
        return cls(
            id=row.id,
            job_id=row.job_id,
            character_id=row.character_id,
            kind=str(params.get("kind", "image")),
            prompt=row.prompt,
            seed=row.seed,
            width=row.width,
            height=row.height,
            steps=row.steps,
            guidance=row.guidance,
            plugin=row.plugin,
            loras=[AppliedLora.model_validate(item) for item in row.loras or []],
            params=params,
            created_at=row.created_at,
            url=generation_file_url(row.id),
            thumbnail_url=f"/api/generations/{row.id}/thumbnail" if row.thumbnail_path else None,
        )


class GenerationPage(BaseModel):
    items: list[GenerationOut]
    next_cursor: str | None


class AgainOptions(BaseModel):
    """Overrides for "generate again": by default the same settings and seed (the same image)."""

    new_seed: bool = Field(default=False, description="pick a new random seed instead of reusing the recorded one")
    num_images: int = Field(default=1, ge=1, le=MAX_IMAGES)
