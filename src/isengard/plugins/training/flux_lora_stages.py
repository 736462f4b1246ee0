"""The `flux-lora` trainer's models, loaded one stage at a time so the GPU peak is the largest stage, not the sum.

1. the text encoders alone encode every caption and sample prompt, then leave (deleted, cache emptied);
2. the VAE alone encodes the latents, then waits in CPU memory (it comes back only to decode samples);
3. only then the transformer loads, stored as the memory profile says, gets its LoRA, and is placed on the device
   (whole, or with its blocks swapped in from CPU memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig

from isengard.domain import TrainingInput
from isengard.plugins.api import (
    BlockSwap,
    JobContext,
    MemoryProfile,
    PluginError,
    attach_block_swap,
    free_device_memory,
    get_base,
    load_scheduler,
    load_text_encoders,
    load_transformer,
    load_vae,
    text_encoder_device,
)
from isengard.plugins.training.flux_lora_config import FluxLoraConfig
from isengard.plugins.training.flux_lora_data import PreparedData, encode_latents, encode_texts, read_dataset


@dataclass
class TrainingModels:
    transformer: Any
    vae: Any  # in CPU memory between samples
    scheduler: Any
    data: PreparedData
    params: list[torch.nn.Parameter]  # the LoRA's trainable weights
    swap: BlockSwap | None = None


def add_lora(transformer: Any, config: FluxLoraConfig) -> list[torch.nn.Parameter]:
    """Freeze the base, add the adapter, keep the trainable LoRA weights in fp32 for stable updates."""
    transformer.requires_grad_(False)
    transformer.add_adapter(
        LoraConfig(
            r=config.rank,
            lora_alpha=config.alpha,  # type: ignore[arg-type]  # peft scales by alpha / r; floats work
            init_lora_weights="gaussian",  # lora_B starts at zero: the LoRA changes nothing before training
            target_modules=config.target_modules,
        )
    )
    params = [p for p in transformer.parameters() if p.requires_grad]
    if not params:
        raise PluginError(f"no transformer layer matches target_modules {config.target_modules}")
    for param in params:
        param.data = param.data.float()
    return params


def load_models(
    ctx: JobContext,
    config: FluxLoraConfig,
    job: TrainingInput,
    *,
    profile: MemoryProfile,
    device: torch.device,
    dtype: torch.dtype,
) -> TrainingModels:
    base = Path(ctx.base_model_dir(config.base))
    family = get_base(config.base).family
    # Bad data fails here, before minutes of model loading.
    dataset = read_dataset(
        job, Path(ctx.data_dir), resolutions=config.resolutions, allow_empty_captions=config.allow_empty_captions
    )

    # 1. Text encoders: captions and sample prompts, once per job.
    ctx.report_progress(0, config.steps, stage="loading model")
    text_device = text_encoder_device(base, device)
    text_pipe = load_text_encoders(base, dtype=dtype, device=text_device)
    ctx.report_progress(0, config.steps, stage="encoding dataset")
    captions, empty, samples = encode_texts(
        family, text_pipe, dataset, job, sample_prompts=config.sample_prompts,
        max_sequence_length=config.max_sequence_length, device=text_device,
    )  # fmt: skip
    del text_pipe
    free_device_memory()
    ctx.log(f"encoded {len(set(dataset.captions))} captions and {len(samples)} sample prompts on {text_device.type}")

    # 2. VAE: latents, then it waits in CPU memory.
    vae = load_vae(base, dtype=dtype, device=device)
    latents = encode_latents(family, vae, dataset, device=device)
    vae.to("cpu")
    free_device_memory()
    data = PreparedData(
        items=dataset.items, latents=latents, captions=captions, empty_caption=empty, sample_prompts=samples,
        image_count=len(dataset.images),
    )  # fmt: skip

    # 3. The transformer, stored as the profile says, with the LoRA.
    transformer = load_transformer(base, profile=profile, dtype=dtype, device=device)
    if config.gradient_checkpointing or profile.offload_blocks:
        transformer.enable_gradient_checkpointing()
    params = add_lora(transformer, config)
    swap = attach_block_swap(transformer, device) if profile.offload_blocks else None
    transformer.train()
    return TrainingModels(
        transformer=transformer, vae=vae, scheduler=load_scheduler(base), data=data, params=params, swap=swap
    )
