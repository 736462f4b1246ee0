"""A full-size base model folder without its weights, for the rehearsal (rehearsal.py).

The real configs of every component (full widths and block counts) and weight files that hold only their
safetensors header, sparse at their true size: `folder_bytes` and the loaders see the real sizes, the disk holds a
few kilobytes, and `fake_cuda()` turns reading them into fake tensors. The tokenizers are the tiny model's in-memory
ones (their vocabulary changes no tensor shape the rehearsal checks: ids index the real-size embeddings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from isengard.models.fake_cuda import write_header_only_safetensors
from isengard.models.flux_layout import FLUX_DEV_TRANSFORMER, T5_XXL_ENCODER


@dataclass(frozen=True)
class FullSizeBase:
    """The components of a FLUX-family pipeline at full size, as their published configs say."""

    name: str
    pipeline_class: str
    transformer_class: str
    transformer: dict[str, Any]
    vae: dict[str, Any]
    clip: dict[str, Any]
    t5: dict[str, Any]
    scheduler: dict[str, Any] = field(default_factory=dict)


# FLUX.1-dev's published component configs (black-forest-labs/FLUX.1-dev, the parts that set shapes).
FLUX1_DEV = FullSizeBase(
    name="FLUX.1-dev",
    pipeline_class="FluxPipeline",
    transformer_class="FluxTransformer2DModel",
    transformer=dict(FLUX_DEV_TRANSFORMER),
    vae={
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": [128, 256, 512, 512],
        "layers_per_block": 2,
        "latent_channels": 16,
        "norm_num_groups": 32,
        "sample_size": 1024,
        "scaling_factor": 0.3611,
        "shift_factor": 0.1159,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
    },
    clip={
        "vocab_size": 49408,
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "max_position_embeddings": 77,
        "projection_dim": 768,
        "hidden_act": "quick_gelu",
    },
    t5=dict(T5_XXL_ENCODER),
    scheduler={
        "shift": 3.0,
        "use_dynamic_shifting": True,
        "base_shift": 0.5,
        "max_shift": 1.15,
        "base_image_seq_len": 256,
        "max_image_seq_len": 4096,
    },
)

BASES: tuple[FullSizeBase, ...] = (FLUX1_DEV,)


def _header_weights(module: torch.nn.Module, path: Path, dtype: torch.dtype) -> None:
    """A tied weight (T5's shared embedding) is written once, as a saved model writes it."""
    seen: set[int] = set()
    tensors = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        tensors[name] = (tuple(tensor.shape), dtype if tensor.is_floating_point() else tensor.dtype)
    write_header_only_safetensors(path, tensors)


def write_full_size_folder(base: FullSizeBase, folder: Path, dtype: torch.dtype = torch.bfloat16) -> Path:
    """A diffusers folder of `base` at full size, weights as header-only files; returns `folder`."""
    import diffusers
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from isengard.models.tiny import _clip_tokenizer, _t5_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    clip_tokenizer, t5_tokenizer = _clip_tokenizer(), _t5_tokenizer()
    with torch.device("meta"):
        transformer = getattr(diffusers, base.transformer_class)(**base.transformer)
        vae: Any = diffusers.AutoencoderKL(**base.vae)
        clip = CLIPTextModel(
            CLIPTextConfig(
                **base.clip,
                bos_token_id=clip_tokenizer.bos_token_id,
                eos_token_id=clip_tokenizer.eos_token_id,
                pad_token_id=clip_tokenizer.pad_token_id,
            )
        )
        t5 = T5EncoderModel(
            T5Config(**base.t5, pad_token_id=t5_tokenizer.pad_token_id, eos_token_id=t5_tokenizer.eos_token_id)
        )
    transformer.save_config(folder / "transformer")
    _header_weights(transformer, folder / "transformer" / "diffusion_pytorch_model.safetensors", dtype)
    vae.save_config(folder / "vae")
    _header_weights(vae, folder / "vae" / "diffusion_pytorch_model.safetensors", dtype)
    for name, model in (("text_encoder", clip), ("text_encoder_2", t5)):
        model.config.dtype = dtype
        model.config.save_pretrained(folder / name)
        _header_weights(model, folder / name / "model.safetensors", dtype)
    clip_tokenizer.save_pretrained(folder / "tokenizer")
    t5_tokenizer.save_pretrained(folder / "tokenizer_2")
    scheduler: Any = diffusers.FlowMatchEulerDiscreteScheduler(**base.scheduler)
    scheduler.save_config(folder / "scheduler")
    index = {
        "_class_name": base.pipeline_class,
        "_diffusers_version": diffusers.__version__,
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "T5EncoderModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "T5Tokenizer"],
        "transformer": ["diffusers", base.transformer_class],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder
