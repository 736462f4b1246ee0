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


def lora_state_dict(transformer: Any, *, rank: int, alpha: float) -> dict[str, torch.Tensor]:
    """The transformer's LoRA weights in diffusers' layout, plus `.alpha` tensors when the scale is not 1."""
    weights = get_peft_model_state_dict(transformer)
    state: dict[str, torch.Tensor] = {}
    modules: set[str] = set()
    for key, tensor in weights.items():
        # Saved in fp16-free full precision of the trained parameters, contiguous for safetensors.
        state[PREFIX + key] = tensor.detach().to("cpu").contiguous()
        if ".lora_A." in key:
            modules.add(key.split(".lora_A.")[0])
    if float(alpha) != float(rank):
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


def save_lora(path: Path, transformer: Any, *, rank: int, alpha: float, metadata: dict[str, Any]) -> Path:
    """Write the LoRA file atomically (a reader never sees half a file)."""
    state = lora_state_dict(transformer, rank=rank, alpha=alpha)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=header_metadata(metadata))
    return path


def load_lora_into(transformer: Any, path: Path) -> None:
    """Load weights saved by `save_lora` back into a transformer that has the same adapter (resume)."""
    with safe_open(str(path), framework="pt") as handle:
        names = [key for key in handle.keys() if not key.endswith(".alpha")]  # noqa: SIM118
        weights = {key.removeprefix(PREFIX): handle.get_tensor(key) for key in names}
    result = set_peft_model_state_dict(transformer, weights)
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise ValueError(f"checkpoint does not match the adapter: unexpected keys {unexpected[:3]}")
