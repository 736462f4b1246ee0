"""Block swapping holds one block's frozen weights on the device through a whole checkpointed training step.

The meta device stands in for the GPU (its tensors have sizes and no storage, so a copy there is a new storage the
test can watch die); the CPU copies are real. One step of the trainer's loss on the tiny FLUX, with gradient
checkpointing as the offload profile always runs it.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

from isengard.models.bases.flux1 import FAMILY
from isengard.models.offload import attach_block_swap, transformer_blocks
from isengard.plugins.training.flow_matching import TextEmbedding, flow_matching_loss
from isengard.plugins.training.flux_lora_config import FluxLoraConfig
from isengard.plugins.training.flux_lora_stages import add_lora

META = torch.device("meta")


def _frozen(block: torch.nn.Module) -> list[torch.Tensor]:
    """What the swap moves: the block's frozen weights and buffers (its LoRA stays on the device)."""
    return [p for p in block.parameters() if not p.requires_grad] + list(block.buffers())


def _device_storages(block: torch.nn.Module) -> list[Any]:
    return [weakref.ref(t.untyped_storage()) for t in _frozen(block) if t.device == META]


def test_a_checkpointed_step_keeps_one_block_on_the_device_at_a_time() -> None:
    transformer: Any = FAMILY.build_tiny(seed=0).transformer.to(torch.bfloat16)
    transformer.enable_gradient_checkpointing()
    add_lora(transformer, FluxLoraConfig(rank=4, alpha=4.0))
    # The LoRA goes to the stand-in device first: `attach_block_swap` moves trainable weights by assigning `.data`,
    # which PyTorch refuses between the CPU and meta (it works between the CPU and CUDA).
    for module in transformer.modules():
        for name, param in list(module._parameters.items()):
            if param is not None and param.requires_grad:
                module._parameters[name] = torch.nn.Parameter(torch.empty_like(param, device=META))
    swap = attach_block_swap(transformer, META)
    transformer.train()
    blocks = transformer_blocks(transformer)
    assert len(blocks) >= 3

    copies: dict[int, list[Any]] = {}
    others_alive: list[int] = []  # at each block's arrival: how many other blocks' device copies still exist

    def watch(block: torch.nn.Module, *_args: Any) -> None:  # runs after the swap's own hook brought the block in
        others_alive.append(
            sum(any(ref() is not None for ref in refs) for key, refs in copies.items() if key != id(block))
        )
        copies[id(block)] = _device_storages(block)

    for block in blocks:
        block.register_forward_pre_hook(watch)

    config = transformer.config
    latents = torch.empty(1, 16, 16, 16, device=META, dtype=torch.bfloat16)
    text = TextEmbedding(
        torch.empty(1, 8, config.joint_attention_dim, device=META, dtype=torch.bfloat16),
        torch.empty(1, config.pooled_projection_dim, device=META, dtype=torch.bfloat16),
    )
    loss = flow_matching_loss(
        FAMILY, transformer, latents, text, torch.empty_like(latents), torch.full((1,), 0.5), guidance_scale=1.0,
        weight_dtype=torch.bfloat16,
    )  # fmt: skip
    loss.backward()

    # Every block arrived twice (forward, then its recomputation in the backward).
    assert len(others_alive) == 2 * len(blocks)
    # At most the block whose backward just finished is still there when the next one arrives.
    assert max(others_alive) <= 1, others_alive
    # After the step, at most one block keeps its device copy in place.
    assert sum(any(t.device == META for t in _frozen(block)) for block in blocks) <= 1
    swap.detach()
