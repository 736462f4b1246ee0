"""The `ai-toolkit` adapter's configuration and its translation into an ai-toolkit YAML job.

ai-toolkit (ostris/ai-toolkit) reads one YAML file per job: a `process` of type `sd_trainer` with `network`,
`save`, `datasets`, `train`, `model` and `sample` sections. Isengard keeps its own field names (the same as the
`flux-lora` trainer where they mean the same thing) and writes that file from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from isengard.plugins.training.flux_lora_config import DEFAULT_SAMPLE_PROMPTS


class AiToolkitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", title="ai-toolkit FLUX LoRA training")

    steps: int = Field(default=2000, ge=1, le=100_000, description="Optimizer steps to train.")
    rank: int = Field(default=16, ge=1, le=256, description="LoRA rank (ai-toolkit: network.linear).")
    alpha: float = Field(default=16.0, gt=0, le=1024, description="LoRA alpha (ai-toolkit: network.linear_alpha).")
    learning_rate: float = Field(default=1e-4, gt=0, le=1.0, description="Learning rate.")
    optimizer: Literal["adamw8bit", "adamw", "prodigy"] = Field(
        default="adamw8bit", description="ai-toolkit optimizer name."
    )
    batch_size: int = Field(default=1, ge=1, le=64, description="Images per step.")
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=64, description="Micro-batches per step.")
    gradient_checkpointing: bool = Field(default=True, description="Trade speed for memory.")
    quantize: bool = Field(default=True, description="Quantize the base transformer to 8 bit (fits 24 GB GPUs).")
    resolutions: list[int] = Field(
        default_factory=lambda: [512, 768, 1024], min_length=1, max_length=6, description="Bucket resolutions."
    )
    caption_dropout: float = Field(default=0.05, ge=0, le=1.0, description="Share of steps without caption.")
    sample_every: int = Field(default=250, ge=1, le=100_000, description="Steps between samples.")
    sample_prompts: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SAMPLE_PROMPTS),
        max_length=8,
        description="Sample prompts; '[trigger]' becomes the trigger word.",
    )
    sample_steps: int = Field(default=20, ge=1, le=100, description="Denoising steps per sample.")
    sample_guidance: float = Field(default=4.0, ge=0, le=20.0, description="Guidance of the samples.")
    sample_resolution: int = Field(default=1024, ge=64, le=2048, description="Width and height of the samples.")
    sample_seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Seed of the samples.")
    checkpoint_every: int = Field(default=250, ge=1, le=100_000, description="Steps between saved LoRAs.")
    keep_checkpoints: int = Field(default=4, ge=1, le=100, description="Saved LoRAs ai-toolkit keeps.")

    @field_validator("resolutions")
    @classmethod
    def _usable(cls, value: list[int]) -> list[int]:
        for resolution in value:
            if resolution < 256 or resolution > 2048 or resolution % 64:
                raise ValueError(f"{resolution} is not a usable resolution: use multiples of 64 from 256 to 2048")
        return sorted(set(value))


def job_config(
    config: AiToolkitConfig,
    *,
    name: str,
    trigger_word: str,
    dataset_dir: Path,
    training_folder: Path,
    base_model: str,
) -> dict[str, Any]:
    """The YAML document ai-toolkit's `run.py` takes, as a dict."""
    process = {
        "type": "sd_trainer",
        "training_folder": str(training_folder),
        "device": "cuda:0",
        "trigger_word": trigger_word,
        "network": {"type": "lora", "linear": config.rank, "linear_alpha": config.alpha},
        "save": {
            "dtype": "float16",
            "save_every": config.checkpoint_every,
            "max_step_saves_to_keep": config.keep_checkpoints,
            "push_to_hub": False,
        },
        "datasets": [
            {
                "folder_path": str(dataset_dir),
                "caption_ext": "txt",
                "caption_dropout_rate": config.caption_dropout,
                "shuffle_tokens": False,
                "cache_latents_to_disk": True,
                "resolution": list(config.resolutions),
            }
        ],
        "train": {
            "batch_size": config.batch_size,
            "steps": config.steps,
            "gradient_accumulation_steps": config.gradient_accumulation_steps,
            "train_unet": True,
            "train_text_encoder": False,
            "gradient_checkpointing": config.gradient_checkpointing,
            "noise_scheduler": "flowmatch",
            "optimizer": config.optimizer,
            "lr": config.learning_rate,
            "dtype": "bf16",
        },
        "model": {"name_or_path": base_model, "is_flux": True, "quantize": config.quantize},
        "sample": {
            "sampler": "flowmatch",
            "sample_every": config.sample_every,
            "width": config.sample_resolution,
            "height": config.sample_resolution,
            "prompts": list(config.sample_prompts),
            "neg": "",
            "seed": config.sample_seed,
            "walk_seed": False,  # one seed for every sample, so steps compare
            "guidance_scale": config.sample_guidance,
            "sample_steps": config.sample_steps,
        },
    }
    return {"job": "extension", "config": {"name": name, "process": [process]}, "meta": {"name": name}}
