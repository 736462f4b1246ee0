"""Sample images during training: the user's prompts through the base's real pipeline with the LoRA active.

Every prompt uses the same seed at every step, so the samples of step 250 and step 500 differ only by training.
The prompts were encoded before the text encoders were freed; the pipeline here has the transformer and the VAE,
which waits in CPU memory between samples and visits the device only to decode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from isengard.plugins.api import Artifact, BaseFamily, JobContext, TextEmbedding, atomic_path, free_device_memory


def sampling_pipeline(family: BaseFamily, scheduler: Any, vae: Any, transformer: Any) -> Any:
    sampler = family.sampling_pipeline(scheduler, vae, transformer)
    sampler.set_progress_bar_config(disable=True)
    return sampler


def render_samples(
    ctx: JobContext,
    family: BaseFamily,
    pipeline: Any,
    prompts: list[tuple[str, TextEmbedding]],
    *,
    negative: TextEmbedding,
    step: int,
    resolution: int,
    num_inference_steps: int,
    guidance_scale: float,
    seed: int,
    device: torch.device,
    dtype: torch.dtype,
) -> list[Artifact]:
    artifacts: list[Artifact] = []
    transformer = pipeline.transformer
    was_training = transformer.training
    transformer.eval()
    pipeline.vae.to(device)
    try:
        for index, (prompt, text) in enumerate(prompts):
            generator = torch.Generator(device="cpu").manual_seed(seed + index)
            image = pipeline(
                **family.prompt_kwargs(text, negative=negative, device=device, dtype=dtype),
                height=resolution,
                width=resolution,
                num_inference_steps=num_inference_steps,
                guidance_scale=guidance_scale,
                generator=generator,
            ).images[0]
            target = Path(ctx.work_dir) / "samples" / f"step-{step:06d}-{index}.png"
            with atomic_path(target) as tmp:
                image.save(tmp, format="PNG")
            artifacts.append(ctx.emit_sample(target, step=step, index=index, prompt=prompt))
    finally:
        transformer.train(was_training)
        pipeline.vae.to("cpu")
        free_device_memory()
    return artifacts
