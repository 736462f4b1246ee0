"""Helpers for image-generation tests: small real LoRA files for the tiny model."""

from __future__ import annotations

from pathlib import Path


def make_test_lora(model_dir: Path, target: Path, *, seed: int = 0, rank: int = 4, scale: float = 0.3) -> Path:
    """A real LoRA for the tiny transformer: peft adapters with non-zero random weights, saved by diffusers."""
    import torch
    from diffusers import FluxPipeline, FluxTransformer2DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = FluxTransformer2DModel.from_pretrained(str(model_dir), subfolder="transformer")
    transformer.add_adapter(
        LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=True)
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_" in name:
                # lora_B starts at zero (no effect); random values on both sides make the LoRA change the output.
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    target.parent.mkdir(parents=True, exist_ok=True)
    FluxPipeline.save_lora_weights(
        str(target.parent), transformer_lora_layers=get_peft_model_state_dict(transformer), weight_name=target.name
    )
    return target
