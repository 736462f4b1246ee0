"""The request every image plugin accepts, and the small rules shared by them (size snapping, trigger word)."""

from __future__ import annotations

import secrets
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from isengard.domain import LoraRef
from isengard.plugins.api import DEFAULT_BASE, UnknownBase, apply_trigger, get_base, substitute_trigger

# Bounds that keep one job from tying up a worker for hours or exhausting GPU memory.
MIN_SIDE = 64
MAX_SIDE = 2048
MAX_STEPS = 150
MAX_IMAGES = 8
MAX_GRID_CELLS = 64
SIZE_MULTIPLE = 16  # FLUX packs 2x2 latent patches over an 8x VAE: sides must be multiples of 16
MAX_SEED = 2**32 - 1


class GridColumn(BaseModel):
    """One column of a comparison grid: a label and the LoRAs (e.g. one checkpoint of a run) it renders with."""

    label: str = Field(default="", max_length=80)
    loras: list[LoraRef] = Field(default_factory=list, max_length=4)


class GridSpec(BaseModel):
    """Rows are every (prompt, seed) pair; columns are LoRA variants. One image results."""

    prompts: list[str] = Field(min_length=1, max_length=8)
    seeds: list[int] = Field(min_length=1, max_length=8)
    columns: list[GridColumn] = Field(min_length=1, max_length=12)

    @model_validator(mode="after")
    def _bounded(self) -> GridSpec:
        cells = len(self.prompts) * len(self.seeds) * len(self.columns)
        if cells > MAX_GRID_CELLS:
            raise ValueError(f"a grid of {cells} images is too large: at most {MAX_GRID_CELLS}")
        if any(not 0 <= seed <= MAX_SEED for seed in self.seeds):
            raise ValueError(f"seeds must be between 0 and {MAX_SEED}")
        if any(not prompt.strip() for prompt in self.prompts):
            raise ValueError("grid prompts must not be empty")
        return self


# Which checkpoint of a base samples: the one LoRAs are trained on, or its distilled sibling (few steps, where the
# base has one; a LoRA trained on the base applies to it).
Checkpoint = Literal["base", "distilled"]


class ImageRequest(BaseModel):
    """What to generate. LoRAs and the trigger word arrive resolved by the API (paths relative to the data dir)."""

    prompt: str = Field(default="", max_length=4000)
    width: int = Field(default=1024, ge=MIN_SIDE, le=MAX_SIDE)
    height: int = Field(default=1024, ge=MIN_SIDE, le=MAX_SIDE)
    steps: int = Field(default=28, ge=1, le=MAX_STEPS)
    guidance: float = Field(default=3.5, ge=0.0, le=30.0)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    num_images: int = Field(default=1, ge=1, le=MAX_IMAGES)
    loras: list[LoraRef] = Field(default_factory=list, max_length=4)
    character_id: str | None = None
    trigger_word: str | None = Field(default=None, max_length=100)
    add_trigger_word: bool = True
    # ComfyUI only: which workflow template renders the request (a shipped name or a file in the user folder).
    workflow: str | None = Field(default=None, max_length=200)
    grid: GridSpec | None = None
    base: str = Field(default=DEFAULT_BASE, max_length=40, description="the base model to generate with")
    checkpoint: Checkpoint = "base"

    @model_validator(mode="after")
    def _prompt_or_grid(self) -> ImageRequest:
        if self.grid is None and not self.prompt.strip():
            raise ValueError("the prompt must not be empty")
        return self

    @model_validator(mode="after")
    def _distilled_defaults(self) -> ImageRequest:
        """The distilled checkpoint samples with its own step count and guidance (the registry's) unless the
        request names them; a base without one is refused."""
        if self.checkpoint != "distilled":
            return self
        try:
            spec = get_base(self.base)
        except UnknownBase as exc:
            raise ValueError(str(exc)) from None
        defaults = spec.distilled_defaults
        if spec.distilled_repo_id is None or defaults is None:
            raise ValueError(f"{spec.label} has no distilled checkpoint: generate with its base checkpoint")
        if "steps" not in self.model_fields_set:
            self.steps = defaults.sample_steps
        if "guidance" not in self.model_fields_set:
            self.guidance = defaults.guidance
        return self


def image_seeds(request: ImageRequest) -> list[int]:
    """The seed of each image: the request's (random when absent), then one more per image, wrapping at MAX_SEED.

    Each image gets its own recorded seed, so any one of them can be reproduced on its own.
    """
    base_seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
    return [(base_seed + index) % (MAX_SEED + 1) for index in range(request.num_images)]


def snap_size(width: int, height: int) -> tuple[int, int, str | None]:
    """Round each side to the nearest multiple of 16 (within bounds); say so when it changed."""

    def snap(value: int) -> int:
        snapped = round(value / SIZE_MULTIPLE) * SIZE_MULTIPLE
        return max(MIN_SIDE, min(MAX_SIDE, snapped))

    new_w, new_h = snap(width), snap(height)
    if (new_w, new_h) == (width, height):
        return width, height, None
    return new_w, new_h, f"size {width}x{height} snapped to {new_w}x{new_h} (FLUX needs multiples of 16)"


def with_trigger_word(prompt: str, trigger_word: str | None, enabled: bool = True) -> str:
    """The prompt the model gets: the character's trigger word placed by the one rule captions and samples follow."""
    if not enabled or not trigger_word or not trigger_word.strip():
        return substitute_trigger(prompt, "").strip(" ,") if enabled else prompt
    return apply_trigger(prompt, trigger_word)


def lora_summary(loras: list[LoraRef]) -> list[dict[str, Any]]:
    """The LoRA list as recorded with each image: enough to show it and to generate again."""
    return [
        {
            "lora_id": ref.lora_id,
            "name": ref.name,
            "weight": ref.weight,
            "path": ref.path,
            "trigger_word": ref.trigger_word,
        }
        for ref in loras
    ]
