"""The `ai-toolkit` adapter's configuration and its translation into an ai-toolkit YAML job.

ai-toolkit (ostris/ai-toolkit) reads one YAML file per job: a `process` of type `sd_trainer` with `network`,
`save`, `datasets`, `train`, `model` and `sample` sections. Isengard keeps its own field names (the same as the
`flux-lora` trainer where they mean the same thing) and writes that file from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from isengard.plugins.api import BASES, DEFAULT_BASE, BaseSpec, get_base
from isengard.plugins.training.sampling_config import SamplingConfig


class AiToolkitConfig(SamplingConfig):
    """What the form offers: the settings ai-toolkit acts on for FLUX, under its own names where they differ.

    Not offered: `linear_alpha` (for FLUX ai-toolkit trains with alpha = rank whatever the file asks) and `device`
    (ai-toolkit runs on accelerate's device). The LoRA's alpha is recorded as the rank, which is what it holds.
    """

    model_config = ConfigDict(extra="forbid", title="ai-toolkit FLUX LoRA training")

    base: str = Field(
        default=DEFAULT_BASE,
        description="The base model (ai-toolkit's model.arch): " + ", ".join(BASES) + ".",
    )
    steps: int = Field(default=2000, ge=1, le=100_000, description="Optimizer steps to train.")
    rank: int = Field(
        default=16, ge=1, le=256, description="LoRA rank (network.linear); ai-toolkit sets alpha to the same value."
    )
    learning_rate: float = Field(default=1e-4, gt=0, le=1.0, description="Learning rate (train.lr).")
    optimizer: Literal["adamw8bit", "adamw", "prodigy"] = Field(
        default="adamw8bit",
        description="train.optimizer: adamw8bit keeps AdamW's state in 8 bits (bitsandbytes, about a quarter of its "
        "memory); adamw in full precision; prodigy adapts the learning rate itself (set it to 1.0).",
    )
    batch_size: int = Field(default=1, ge=1, le=64, description="Images per step (train.batch_size).")
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=64, description="Micro-batches per step.")
    gradient_checkpointing: bool = Field(
        default=True,
        description="train.gradient_checkpointing: recompute activations in the backward pass; much less memory, "
        "about 1.5x slower per step.",
    )
    quantize: bool = Field(
        default=True,
        description="model.quantize: hold the frozen FLUX transformer in 8-bit float (qtype qfloat8, optimum-quanto): "
        "about half the memory of bf16, so FLUX.1-dev trains on a 24 GB GPU; slightly slower per step.",
    )
    low_vram: bool = Field(
        default=False,
        description="model.low_vram: load and quantize the model part by part from system memory, so a GPU that "
        "also drives a display does not run out while loading; starts slower.",
    )
    dtype: Literal["bf16", "fp16", "fp32"] = Field(
        default="bf16",
        description="train.dtype: precision of the frozen model on a GPU (FLUX is made for bf16). A run on a CPU "
        "computes in float32 whatever this says.",
    )
    resolutions: list[int] = Field(
        default_factory=lambda: [512, 768, 1024], min_length=1, max_length=6, description="Bucket resolutions."
    )
    caption_dropout: float = Field(default=0.05, ge=0, le=1.0, description="Share of steps without caption.")

    @field_validator("base")
    @classmethod
    def _known_base(cls, value: str) -> str:
        if value not in BASES:
            raise ValueError(f"unknown base '{value}': known bases are {', '.join(BASES)}")
        return value

    @field_validator("resolutions")
    @classmethod
    def _usable(cls, value: list[int]) -> list[int]:
        for resolution in value:
            if resolution < 64 or resolution > 2048 or resolution % 64:
                raise ValueError(f"{resolution} is not a usable resolution: use multiples of 64 from 64 to 2048")
        return sorted(set(value))


def model_section(spec: BaseSpec) -> dict[str, Any]:
    """How ai-toolkit is told the base: FLUX.1 by its `is_flux` flag, any other base by its `arch` name."""
    if spec.ai_toolkit_arch is None:
        return {"is_flux": True}
    return {"arch": spec.ai_toolkit_arch}


def job_config(
    config: AiToolkitConfig,
    *,
    name: str,
    trigger_word: str,
    dataset_dir: Path,
    training_folder: Path,
    base_model: str,
) -> dict[str, Any]:
    """The YAML document ai-toolkit's `run.py` takes, as a dict.

    `logging.use_ui_logger` makes ai-toolkit write each step's loss to `<output>/loss_log.db`, which the adapter
    reads instead of guessing steps from progress-bar redraws.
    """
    process = {
        "type": "sd_trainer",
        "training_folder": str(training_folder),
        "trigger_word": trigger_word,
        # For FLUX ai-toolkit trains with alpha = rank whatever linear_alpha says: write what it will do.
        "network": {"type": "lora", "linear": config.rank, "linear_alpha": config.rank},
        "save": {
            "dtype": "float16",
            "save_every": config.checkpoint_every,
            "max_step_saves_to_keep": config.keep_checkpoints,
            "push_to_hub": False,
        },
        "logging": {"log_every": 1, "use_ui_logger": True},
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
            "dtype": config.dtype,
        },
        "model": {
            "name_or_path": base_model,
            **model_section(get_base(config.base)),
            "quantize": config.quantize,
            "qtype": "qfloat8",
            "low_vram": config.low_vram,
        },
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
