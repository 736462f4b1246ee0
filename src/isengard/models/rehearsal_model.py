"""A full-size base model folder without its weights, for the rehearsal (rehearsal.py).

The real configs of every component (full widths and block counts) and weight files that hold only their
safetensors header, sparse at their true size: `folder_bytes` and the loaders see the real sizes, the disk holds a
few kilobytes, and `fake_cuda()` turns reading them into fake tensors. The tokenizers and scheduler are the
family's tiny model's (a vocabulary changes no tensor shape the rehearsal checks: ids index the real-size embeddings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from isengard.models.bases import BaseSpec
from isengard.models.fake_cuda import write_header_only_safetensors

# What the registry does not hold at full size (it prices only the large text encoder and counts the VAE): FLUX.1's
# published VAE and CLIP-L configs (black-forest-labs/FLUX.1-dev). FLUX.2's VAE is diffusers' default config.
FLUX1_VAE: dict[str, Any] = {
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
}
CLIP_L_TEXT: dict[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
}
VAE_CONFIGS: dict[str, dict[str, Any]] = {"flux1": FLUX1_VAE, "flux2-klein": {}}
# Token ids stay those of the tiny tokenizers the folder keeps.
_TOKEN_IDS = ("bos_token_id", "eos_token_id", "pad_token_id")


def text_encoder_configs(spec: BaseSpec) -> dict[str, dict[str, Any]]:
    """Each text encoder's full-size config: the family's large one from the registry, CLIP-L beside T5."""
    folders = spec.family.text_encoder_folders
    if len(folders) == 1:
        return {folders[0]: dict(spec.text_encoder_config)}
    return {folders[0]: dict(CLIP_L_TEXT), folders[1]: dict(spec.text_encoder_config)}


def _header_weights(module: torch.nn.Module, path: Path, dtype: torch.dtype) -> None:
    """A tied weight (T5's shared embedding) is written once, as a saved model writes it."""
    seen: set[int] = set()
    tensors = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        tensors[name] = (tuple(tensor.shape), dtype if tensor.is_floating_point() else tensor.dtype)
    for old in path.parent.glob("*.safetensors*"):
        old.unlink()
    write_header_only_safetensors(path, tensors)


def write_full_size_folder(spec: BaseSpec, folder: Path, dtype: torch.dtype = torch.bfloat16) -> Path:
    """A diffusers folder of `spec` at full size, weights as header-only files; returns `folder`.

    The family's tiny pipeline is saved first (tokenizers, scheduler, model_index.json: what the loaders read as a
    real folder has them); then every model is replaced by its full-size config and header-only weights."""
    family = spec.family
    tiny = family.build_tiny(seed=0)
    tiny.save_pretrained(folder)
    with torch.device("meta"):
        transformer: Any = family.transformer_cls()(**spec.transformer_config)
        vae: Any = family.vae_cls()(**VAE_CONFIGS[family.name])
        encoders = {}
        for name, config in text_encoder_configs(spec).items():
            small = getattr(tiny, name)
            ids = {key: getattr(small.config, key, None) for key in _TOKEN_IDS}
            ids = {key: value for key, value in ids.items() if value is not None}
            encoders[name] = type(small)(type(small.config)(**{**config, **ids}))
    for name, model in (("transformer", transformer), ("vae", vae)):
        model.save_config(folder / name)
        _header_weights(model, folder / name / "diffusion_pytorch_model.safetensors", dtype)
    for name, model in encoders.items():
        model.config.dtype = dtype
        model.config.save_pretrained(folder / name)
        _header_weights(model, folder / name / "model.safetensors", dtype)
    return folder
