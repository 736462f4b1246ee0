"""FLUX's rectified-flow objective: noise levels, the noisy input, the velocity target, and the loss.

FLUX learns the straight path between an image latent x0 and noise n: at noise level sigma the input is
(1 - sigma) * x0 + sigma * n and the model predicts the velocity n - x0. How latents become tokens, their positional
ids and the text inputs differ by family (FLUX.1 packs 2x2 patches and embeds the guidance scale; FLUX.2 patchifies
in the VAE's space and has no guidance embedding): the base registry's family says.
"""

from __future__ import annotations

from typing import Any

import torch

from isengard.plugins.api import BaseFamily, TextEmbedding

__all__ = ["TextEmbedding", "flow_matching_loss", "sample_sigmas", "stack_text"]


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


def flow_matching_loss(
    family: BaseFamily,
    transformer: Any,
    latents: torch.Tensor,
    text: TextEmbedding,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    guidance_scale: float,
    weight_dtype: torch.dtype,
) -> torch.Tensor:
    """Mean squared error between the predicted and the true velocity for one batch of (unpacked) latents; the
    base's family feeds its transformer (packing, positional ids, text inputs, guidance embedding)."""
    sigmas = sigmas.to(device=latents.device, dtype=latents.dtype).view(-1, 1, 1, 1)
    noisy = (1.0 - sigmas) * latents + sigmas * noise
    target = noise - latents
    prediction = family.predict(
        transformer, noisy, text, sigmas.view(-1), guidance_scale=guidance_scale, weight_dtype=weight_dtype
    )
    return torch.nn.functional.mse_loss(prediction.float(), family.pack(target).float(), reduction="mean")


def stack_text(embeddings: list[TextEmbedding]) -> TextEmbedding:
    """One batch of text embeddings; captions of one batch share the encoder's fixed padded length."""
    pooled = [e.pooled_prompt_embeds for e in embeddings]
    return TextEmbedding(
        prompt_embeds=torch.cat([e.prompt_embeds for e in embeddings]),
        pooled_prompt_embeds=None if any(p is None for p in pooled) else torch.cat(pooled),  # type: ignore[arg-type]
    )
