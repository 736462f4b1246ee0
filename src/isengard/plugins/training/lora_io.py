"""Saving LoRA weights so every loader reads them at the strength they were trained at, and checkpoint state.

The file is safetensors in diffusers' key layout (`transformer.<module>.lora_A.weight` / `lora_B.weight`). The
alpha / rank scale must survive in every loader: ComfyUI reads per-module `<module>.alpha` tensors and ignores the
header, while diffusers refuses a file with both `.alpha` tensors and peft adapter metadata. So `.alpha` tensors are
written whenever alpha ≠ rank (never the adapter metadata); descriptive metadata goes in the header as strings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors import safe_open
from safetensors.torch import save_file

from isengard.plugins.api import atomic_path

PREFIX = "transformer."
# Header key of a file whose alpha / rank scale is multiplied into its B matrices (the factor, as a string).
BAKED_SCALE = "lora_scale_baked"


def lora_state_dict(
    transformer: Any, *, rank: int, alpha: float, alpha_tensors: bool = True
) -> dict[str, torch.Tensor]:
    """The transformer's LoRA weights in diffusers' layout, the scale alpha / rank kept as `.alpha` tensors when it
    is not 1, or (`alpha_tensors` False: loaders of bases that refuse `.alpha` keys, as diffusers' FLUX.2 loader
    does) multiplied into the B matrices, which every loader then reads at the trained strength."""
    weights = get_peft_model_state_dict(transformer)
    scale = float(alpha) / float(rank)
    state: dict[str, torch.Tensor] = {}
    modules: set[str] = set()
    for key, tensor in weights.items():
        # Saved in fp16-free full precision of the trained parameters, contiguous for safetensors.
        value = tensor.detach().to("cpu")
        if not alpha_tensors and scale != 1.0 and ".lora_B." in key:
            value = value * scale
        state[PREFIX + key] = value.contiguous()
        if ".lora_A." in key:
            modules.add(key.split(".lora_A.")[0])
    if alpha_tensors and scale != 1.0:
        for module in sorted(modules):
            state[f"{PREFIX}{module}.alpha"] = torch.tensor(float(alpha))
    return state


def header_metadata(values: dict[str, Any]) -> dict[str, str]:
    """safetensors headers hold strings only: lists and dicts as JSON, everything else as str()."""
    metadata: dict[str, str] = {"format": "pt"}
    for key, value in values.items():
        if value is None:
            continue
        metadata[key] = value if isinstance(value, str) else json.dumps(value)
    return metadata


def save_lora(
    path: Path, transformer: Any, *, rank: int, alpha: float, metadata: dict[str, Any], alpha_tensors: bool = True
) -> Path:
    """Write the LoRA file atomically (a reader never sees half a file)."""
    state = lora_state_dict(transformer, rank=rank, alpha=alpha, alpha_tensors=alpha_tensors)
    header = dict(metadata)
    if not alpha_tensors and float(alpha) != float(rank):
        header[BAKED_SCALE] = str(float(alpha) / float(rank))
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=header_metadata(header))
    return path


def load_lora_into(transformer: Any, path: Path) -> None:
    """Load weights saved by `save_lora` back into a transformer that has the same adapter (resume)."""
    with safe_open(str(path), framework="pt") as handle:
        names = [key for key in handle.keys() if not key.endswith(".alpha")]  # noqa: SIM118
        weights = {key.removeprefix(PREFIX): handle.get_tensor(key) for key in names}
        baked = float((handle.metadata() or {}).get(BAKED_SCALE, "1.0"))
    if baked != 1.0:  # the adapter applies alpha / rank itself: take the scale out of B again
        weights = {key: value / baked if ".lora_B." in key else value for key, value in weights.items()}
    result = set_peft_model_state_dict(transformer, weights)
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise ValueError(f"checkpoint does not match the adapter: unexpected keys {unexpected[:3]}")
