"""Samples and saved LoRAs during a training run: the settings every trainer shares, with one set of defaults.

Both trainers (the built-in `flux-lora` and the `ai-toolkit` adapter) render the same kind of samples and keep the
same kind of step LoRAs, so the knobs, their bounds and their defaults live here once. A trainer's config inherits
from `SamplingConfig`; the form lists these fields after the trainer's own.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_SAMPLE_PROMPTS = [
    "[trigger], a portrait photo, soft light",
    "[trigger] walking in a city street, full body",
    "a painting of [trigger] in the style of an oil portrait",
]


def _sampling_fields_last(schema: dict[str, Any]) -> None:
    """Pydantic lists inherited fields first; the form reads better with the trainer's own knobs on top."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    shared = [name for name in SamplingConfig.model_fields if name in properties]
    reordered = {name: value for name, value in properties.items() if name not in shared}
    reordered.update((name, properties[name]) for name in shared)
    schema["properties"] = reordered


class SamplingConfig(BaseModel):
    model_config = ConfigDict(json_schema_extra=_sampling_fields_last)

    sample_every: int = Field(default=250, ge=0, le=100_000, description="Steps between samples (0: only at the end).")
    sample_prompts: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SAMPLE_PROMPTS),
        max_length=8,
        description="Prompts for the samples; '[trigger]' becomes the trigger word.",
    )
    sample_steps: int = Field(default=20, ge=1, le=100, description="Denoising steps per sample.")
    sample_guidance: float = Field(default=3.5, ge=0, le=20.0, description="Guidance of the samples.")
    sample_resolution: int = Field(default=1024, ge=64, le=2048, description="Width and height of the samples.")
    sample_seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Fixed seed so samples compare across steps.")
    checkpoint_every: int = Field(
        default=250, ge=0, le=100_000, description="Steps between saved LoRAs of the run (0: none)."
    )
    keep_checkpoints: int = Field(default=3, ge=1, le=100, description="Saved LoRAs kept; older ones are removed.")
