"""The `flux-lora` trainer's configuration: every knob with its bounds and a description the web form shows.

Defaults follow what works for characters on FLUX.1-dev (ai-toolkit's character example: rank 16, learning rate
1e-4, 2000 steps, buckets 512/768/1024, caption dropout 0.05, a sample every 250 steps).
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from isengard.plugins.api import BASES, DEFAULT_BASE, ProfileChoice, get_base
from isengard.plugins.training.sampling_config import SamplingConfig

Optimizer = Literal["adamw", "adamw8bit", "prodigy"]
LrScheduler = Literal["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial"]
TimestepSampling = Literal["sigmoid", "shift", "uniform"]
Precision = Literal["bf16", "fp16", "fp32"]


class FluxLoraConfig(SamplingConfig):
    model_config = ConfigDict(extra="forbid", title="FLUX LoRA training")

    # What is trained.
    base: str = Field(
        default=DEFAULT_BASE,
        description="The base model the LoRA is trained on (and will only work with): "
        + ", ".join(f"{spec.name} ({spec.label})" for spec in BASES.values())
        + ".",
    )
    steps: int = Field(default=2000, ge=1, le=100_000, description="Optimizer steps to train.")
    rank: int = Field(default=16, ge=1, le=256, description="LoRA rank: capacity of the adapter (4 to 64 typical).")
    alpha: float = Field(
        default=16.0,
        gt=0,
        le=1024,
        description="LoRA alpha: the update is scaled by alpha / rank. Equal to the rank means no extra scaling.",
    )
    target_modules: list[str] = Field(
        default_factory=lambda data: list(get_base(data.get("base")).family.lora_targets),
        min_length=1,
        max_length=64,
        description="Transformer layers that get a LoRA (suffixes of module names, e.g. 'attn.to_q').",
    )

    # Optimization.
    learning_rate: float = Field(default=1e-4, gt=0, le=1.0, description="Peak learning rate (Prodigy: use 1.0).")
    optimizer: Optimizer = Field(
        default="adamw",
        description="AdamW; 8-bit AdamW (needs bitsandbytes, less memory); Prodigy (needs prodigyopt, adapts the lr).",
    )
    weight_decay: float = Field(default=1e-4, ge=0, le=1.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(default=1.0, gt=0, le=100.0, description="Gradients are clipped to this norm.")
    lr_scheduler: LrScheduler = Field(default="constant", description="Learning-rate schedule after the warmup.")
    lr_warmup_steps: int = Field(default=0, ge=0, le=10_000, description="Steps ramping the learning rate up.")
    batch_size: int = Field(default=1, ge=1, le=64, description="Images per step (from one aspect bucket).")
    gradient_accumulation_steps: int = Field(
        default=1, ge=1, le=64, description="Micro-batches summed per optimizer step (a larger effective batch)."
    )
    gradient_checkpointing: bool = Field(
        default=True, description="Recompute activations in the backward pass: much less memory, ~1.5x slower."
    )
    mixed_precision: Precision = Field(
        default="bf16", description="Precision of the frozen base model (a CPU always uses fp32)."
    )
    memory_profile: ProfileChoice = Field(
        default="auto",
        description="How the frozen base is held in GPU memory: bf16 (fastest, most memory), int8, nf4 (4-bit), "
        "nf4-offload (blocks swapped to CPU memory: smallest, slowest), or auto: the fastest that fits the GPU.",
    )
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Seed of data order, noise and timesteps.")

    # Flow matching.
    timestep_sampling: TimestepSampling = Field(
        default="sigmoid",
        description="How noise levels are drawn: sigmoid of a normal (favours the middle), shifted (favours high "
        "noise, like FLUX inference), or uniform.",
    )
    sigmoid_scale: float = Field(default=1.0, gt=0, le=10.0, description="Spread of the sigmoid sampling.")
    timestep_shift: float = Field(default=3.0, gt=0, le=20.0, description="Shift of the 'shift' sampling.")
    guidance_scale: float = Field(
        default=1.0, ge=0, le=20.0, description="Guidance embedding fed to FLUX.1-dev's transformer while training."
    )

    # Data.
    resolutions: list[int] = Field(
        default_factory=lambda: [512, 768, 1024],
        min_length=1,
        max_length=6,
        description="Training resolutions; each image is trained at each one, in aspect-ratio buckets.",
    )
    caption_dropout: float = Field(
        default=0.05, ge=0, le=1.0, description="Share of steps that train on an empty caption."
    )
    allow_empty_captions: bool = Field(
        default=False, description="Train images without a caption (only the trigger word is then learned)."
    )
    max_sequence_length: int = Field(default=512, ge=16, le=512, description="T5 tokens per caption.")

    # Samples and saved checkpoints: SamplingConfig.

    @field_validator("resolutions")
    @classmethod
    def _resolutions_fit_the_model(cls, value: list[int]) -> list[int]:
        for resolution in value:
            if resolution < 64 or resolution > 2048 or resolution % 16:
                raise ValueError(f"{resolution} is not a usable resolution: use multiples of 16 from 64 to 2048")
        return sorted(set(value))

    @field_validator("base")
    @classmethod
    def _known_base(cls, value: str) -> str:
        if value not in BASES:
            raise ValueError(f"unknown base '{value}': known bases are {', '.join(BASES)}")
        return value

    @field_validator("target_modules")
    @classmethod
    def _plain_module_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name or not all(part.isidentifier() or part.isdigit() for part in name.split(".")):
                raise ValueError(f"'{name}' is not a module name (dotted identifiers such as 'attn.to_q')")
        return value

    @model_validator(mode="after")
    def _warmup_inside_the_run(self) -> FluxLoraConfig:
        if self.lr_warmup_steps >= self.steps and self.lr_warmup_steps > 0:
            raise ValueError(f"lr_warmup_steps ({self.lr_warmup_steps}) must be fewer than steps ({self.steps})")
        return self


def fast_test_defaults() -> dict[str, object]:
    """Defaults for the tiny CPU model: what FLUX.1-dev needs would take hours there, the tiny model seconds."""
    return {
        "steps": 100,
        "rank": 8,
        "alpha": 8.0,
        "learning_rate": 2e-3,
        "resolutions": [64, 128],
        "gradient_checkpointing": False,
        "mixed_precision": "fp32",
        "sample_every": 50,
        "sample_steps": 4,
        "sample_resolution": 128,
        "checkpoint_every": 50,
        "max_sequence_length": 64,
    }
