"""FLUX's rectified-flow objective: noise levels, the noisy input, the velocity target, and the loss.

FLUX learns the straight path between an image latent x0 and noise n: at noise level sigma the input is
(1 - sigma) * x0 + sigma * n and the model predicts the velocity n - x0. The transformer works on "packed" latents
(2x2 patches flattened into tokens) with positional ids per token, and FLUX.1-dev also takes the guidance scale as an
embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers import FluxPipeline


def sample_sigmas(
    scheme: str,
    batch_size: int,
    *,
    generator: torch.Generator,
    sigmoid_scale: float = 1.0,
    shift: float = 3.0,
) -> torch.Tensor:
    """Noise levels in (0, 1) for a batch, on the CPU (drawn from `generator`, so a seed replays them)."""
    if scheme == "uniform":
        sigmas = torch.rand(batch_size, generator=generator)
    elif scheme == "sigmoid":
        sigmas = torch.sigmoid(sigmoid_scale * torch.randn(batch_size, generator=generator))
    elif scheme == "shift":
        # The same time shift FLUX's scheduler applies at inference: most training at high noise levels.
        u = torch.sigmoid(torch.randn(batch_size, generator=generator))
        sigmas = shift * u / (1 + (shift - 1) * u)
    else:
        raise ValueError(f"unknown timestep sampling '{scheme}'")
    return sigmas.clamp(1e-4, 1 - 1e-4)


@dataclass
class TextEmbedding:
    """A caption encoded once: T5 token embeddings and CLIP's pooled embedding (batch dimension 1)."""

    prompt_embeds: torch.Tensor
    pooled_prompt_embeds: torch.Tensor


def pack(latents: torch.Tensor) -> torch.Tensor:
    batch, channels, height, width = latents.shape
    packed: torch.Tensor = FluxPipeline._pack_latents(latents, batch, channels, height, width)
    return packed


def latent_ids(latents: torch.Tensor) -> torch.Tensor:
    """Positional ids of the packed tokens (the packed grid is half the latent grid each way)."""
    _, _, height, width = latents.shape
    ids: torch.Tensor = FluxPipeline._prepare_latent_image_ids(
        latents.shape[0], height // 2, width // 2, latents.device, latents.dtype
    )
    return ids


def flow_matching_loss(
    transformer: Any,
    latents: torch.Tensor,
    text: TextEmbedding,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    guidance_scale: float,
    weight_dtype: torch.dtype,
) -> torch.Tensor:
    """Mean squared error between the predicted and the true velocity for one batch of (unpacked) latents."""
    device = latents.device
    sigmas = sigmas.to(device=device, dtype=latents.dtype).view(-1, 1, 1, 1)
    noisy = (1.0 - sigmas) * latents + sigmas * noise
    target = noise - latents

    packed = pack(noisy).to(weight_dtype)
    batch = latents.shape[0]
    prompt_embeds = text.prompt_embeds.to(device=device, dtype=weight_dtype)
    pooled = text.pooled_prompt_embeds.to(device=device, dtype=weight_dtype)
    text_ids = torch.zeros(prompt_embeds.shape[1], 3, device=device, dtype=weight_dtype)
    guidance = None
    if getattr(transformer.config, "guidance_embeds", False):
        guidance = torch.full((batch,), guidance_scale, device=device, dtype=torch.float32)

    prediction = transformer(
        hidden_states=packed,
        timestep=sigmas.view(-1).to(weight_dtype),  # sigma in [0, 1]: the pipeline divides by 1000
        guidance=guidance,
        pooled_projections=pooled,
        encoder_hidden_states=prompt_embeds,
        txt_ids=text_ids,
        img_ids=latent_ids(latents).to(weight_dtype),
        return_dict=False,
    )[0]
    loss = torch.nn.functional.mse_loss(prediction.float(), pack(target).float(), reduction="mean")
    return loss


def stack_text(embeddings: list[TextEmbedding]) -> TextEmbedding:
    """One batch of text embeddings; captions of one batch share T5's fixed padded length."""
    return TextEmbedding(
        prompt_embeds=torch.cat([e.prompt_embeds for e in embeddings]),
        pooled_prompt_embeds=torch.cat([e.pooled_prompt_embeds for e in embeddings]),
    )
