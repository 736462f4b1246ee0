"""Helpers for image-generation tests: small real LoRA files for the tiny models."""

from __future__ import annotations

from pathlib import Path

from isengard.models.bases import DEFAULT_BASE, get_base


def make_test_lora(
    model_dir: Path, target: Path, *, seed: int = 0, rank: int = 4, scale: float = 0.3, base: str = DEFAULT_BASE
) -> Path:
    """A real LoRA for `base`'s tiny transformer: peft adapters with non-zero random weights on the family's LoRA
    targets (FLUX.1: the attention projections), saved by diffusers in that family's layout."""
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    family = get_base(base).family
    targets = ["to_q", "to_k", "to_v", "to_out.0"] if base == DEFAULT_BASE else list(family.lora_targets)
    transformer = family.transformer_cls().from_pretrained(str(model_dir), subfolder="transformer")
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights=True))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_" in name:
                # lora_B starts at zero (no effect); random values on both sides make the LoRA change the output.
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    target.parent.mkdir(parents=True, exist_ok=True)
    family.pipeline_cls().save_lora_weights(
        str(target.parent), transformer_lora_layers=get_peft_model_state_dict(transformer), weight_name=target.name
    )
    return target
