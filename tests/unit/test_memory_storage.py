"""The planner's weight bytes against what diffusers, transformers and torchao really build and store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import FluxTransformer2DModel
from transformers import T5Config, T5EncoderModel

from isengard.models.bases.flux1 import (
    FLUX1_TARGET_MODULES,
    FLUX_DEV_TRANSFORMER,
    T5_XXL_ENCODER,
    flux_layout,
    t5_encoder_layout,
)
from isengard.models.loading import quantization_config
from isengard.models.memory_storage import layout_bytes, lora_numel, transformer_bytes
from isengard.models.profiles import WeightFormat

# Widths that are multiples of 128, so every linear layer but the 64-channel patch embedder and output projection
# can be stored as torchao NF4 (blocks of 64 x 256 values) and int8: the planner must tell which are left in bf16.
QUANTIZABLE_TINY = {
    "patch_size": 1,
    "in_channels": 64,
    "num_layers": 2,
    "num_single_layers": 2,
    "attention_head_dim": 64,
    "num_attention_heads": 2,
    "joint_attention_dim": 128,
    "pooled_projection_dim": 128,
    "guidance_embeds": True,
    "axes_dims_rope": [16, 24, 24],
}
# One double and one single block of FLUX.1-dev at its full width (hidden 3072).
FULL_WIDTH_SLICE = {**FLUX_DEV_TRANSFORMER, "num_layers": 1, "num_single_layers": 1}


def stored_bytes(tensor: torch.Tensor) -> int:
    """What a tensor occupies, looking inside torchao's tensor subclasses at the tensors they store."""
    if type(tensor) not in (torch.Tensor, torch.nn.Parameter) and hasattr(tensor, "__tensor_flatten__"):
        names, _ = tensor.__tensor_flatten__()
        return sum(stored_bytes(getattr(tensor, name)) for name in names)
    return tensor.numel() * tensor.element_size()


def model_bytes(model: torch.nn.Module) -> int:
    return sum(stored_bytes(p) for p in model.parameters()) + sum(stored_bytes(b) for b in model.buffers())


def planned_bytes(config: dict[str, Any], weight_format: WeightFormat) -> int:
    outer, blocks = transformer_bytes(flux_layout(config), weight_format)
    return outer + sum(size * n for size, n in blocks)


@pytest.mark.parametrize("config", [FLUX_DEV_TRANSFORMER, QUANTIZABLE_TINY], ids=["flux-dev", "tiny"])
def test_flux_layout_matches_the_model_diffusers_builds(config: dict[str, Any]) -> None:
    with torch.device("meta"):
        model = FluxTransformer2DModel(**config)
    layout = flux_layout(config)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    planned_linears = [linear for block, n in [(layout.outer, 1), *layout.blocks()] for linear in block.linears * n]

    assert layout.numel == sum(p.numel() for p in model.parameters())
    assert sorted((m.in_features, m.out_features) for m in linears) == sorted(
        (linear.in_features, linear.out_features) for linear in planned_linears
    )
    if config is FLUX_DEV_TRANSFORMER:
        assert round(layout.numel / 1e9, 2) == 11.90  # FLUX.1-dev's published size


def test_t5_layout_matches_the_encoder_transformers_builds() -> None:
    with torch.device("meta"):
        model = T5EncoderModel(T5Config(**T5_XXL_ENCODER))
    assert t5_encoder_layout(T5_XXL_ENCODER).numel == sum(p.numel() for p in model.parameters())


def test_t5_in_int8_stores_what_the_planner_says() -> None:
    """T5-XXL as the generation engine holds it beside a quantized transformer (torchao int8 weight-only)."""
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    with torch.device("meta"):
        model = T5EncoderModel(T5Config(**T5_XXL_ENCODER))
    model.to(torch.bfloat16)
    quantize_(model, Int8WeightOnlyConfig())
    measured = model_bytes(model)
    assert abs(layout_bytes(t5_encoder_layout(T5_XXL_ENCODER), "int8") - measured) <= 0.05 * measured


def test_lora_parameter_count_matches_peft() -> None:
    with torch.device("meta"):
        model = FluxTransformer2DModel(**FULL_WIDTH_SLICE)
    from peft import LoraConfig

    model.add_adapter(LoraConfig(r=16, lora_alpha=16, target_modules=list(FLUX1_TARGET_MODULES)))
    layout = flux_layout(FULL_WIDTH_SLICE)
    places = [(layout.outer, 1), *layout.blocks()]
    planned = sum(lora_numel(block, 16, list(FLUX1_TARGET_MODULES)) * n for block, n in places)
    assert planned == sum(p.numel() for name, p in model.named_parameters() if "lora_" in name)


@pytest.mark.parametrize("weight_format", ["int8", "nf4"])
def test_quantized_tiny_model_through_diffusers_stores_what_the_planner_says(
    tmp_path: Path, weight_format: WeightFormat
) -> None:
    torch.manual_seed(0)
    FluxTransformer2DModel(**QUANTIZABLE_TINY).to(torch.bfloat16).save_pretrained(tmp_path)
    # The trainer's own door: diffusers' quantization_config as models/loading.py builds it.
    model = FluxTransformer2DModel.from_pretrained(
        tmp_path, dtype=torch.bfloat16, quantization_config=quantization_config(weight_format, QUANTIZABLE_TINY)
    )
    measured = model_bytes(model)

    assert measured < model_bytes(FluxTransformer2DModel.from_pretrained(tmp_path, dtype=torch.bfloat16))
    assert abs(planned_bytes(QUANTIZABLE_TINY, weight_format) - measured) <= 0.05 * measured


@pytest.mark.parametrize("weight_format", ["bf16", "int8", "nf4"])
def test_full_width_slice_of_flux_stores_what_the_planner_says(weight_format: WeightFormat) -> None:
    """torchao quantizes the meta-device slice as it would real weights: the tensors it stores have their real
    shapes and dtypes, without 1 GB of values (the slow test below does it with values)."""
    from torchao.quantization import quantize_

    with torch.device("meta"):
        model = FluxTransformer2DModel(**FULL_WIDTH_SLICE)
    model.to(torch.bfloat16)
    if weight_format != "bf16":
        # What diffusers does with the trainer's quantization_config, on a model already in memory.
        quantize_(model, quantization_config(weight_format, FULL_WIDTH_SLICE).get_apply_tensor_subclass())
    measured = model_bytes(model)

    assert abs(planned_bytes(FULL_WIDTH_SLICE, weight_format) - measured) <= 0.05 * measured
    if weight_format == "nf4":
        assert measured < 0.3 * 2 * flux_layout(FULL_WIDTH_SLICE).numel  # about a quarter of bf16


@pytest.mark.slow
def test_full_width_slice_with_real_weights_stores_what_the_planner_says() -> None:
    from torchao.quantization import quantize_

    with torch.device("meta"):
        model = FluxTransformer2DModel(**FULL_WIDTH_SLICE)
    model = model.to_empty(device="cpu").to(torch.bfloat16)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(std=0.02)
    quantize_(model, quantization_config("int8", FULL_WIDTH_SLICE).get_apply_tensor_subclass())
    measured = model_bytes(model)

    assert abs(planned_bytes(FULL_WIDTH_SLICE, "int8") - measured) <= 0.05 * measured
