"""Checks on what an imported LoRA holds, beyond its layout: values a generator could not use, and header text the
database could not store. Kept apart from the layout conversion (formats.py) so each stays one concern."""

from __future__ import annotations

import logging

import torch

from isengard.api.services.loras.formats import LoraFormatError
from isengard.api.support.text import column_max_length, fits_column
from isengard.db.models import Lora

log = logging.getLogger(__name__)

_WEIGHT_SUFFIXES = (".lora_A.weight", ".lora_B.weight", ".lora_down.weight", ".lora_up.weight")


def check_lora_values(state: dict[str, torch.Tensor]) -> None:
    """Refuse a LoRA whose numbers cannot work: a rank of 0, an alpha that is not one finite positive number, or
    weights that are not finite (a NaN or an infinity anywhere turns every generated image into noise)."""
    for key, tensor in state.items():
        if key.endswith(".alpha"):
            if tensor.numel() != 1:
                raise LoraFormatError(f"'{key}' holds {tensor.numel()} values: an alpha is one number")
            value = float(tensor.reshape(()).item())
            if not torch.isfinite(torch.tensor(value)) or value <= 0:
                raise LoraFormatError(f"'{key}' is {value}: an alpha must be a finite number above 0")
        elif key.endswith(_WEIGHT_SUFFIXES):
            if tensor.ndim != 2 or 0 in tensor.shape:
                raise LoraFormatError(f"'{key}' has shape {tuple(tensor.shape)}: a LoRA matrix has a rank of 1 or more")
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise LoraFormatError(f"'{key}' holds NaN or infinite values: the file is damaged")


def metadata_trigger_word(header: dict[str, str]) -> str | None:
    """The trigger word a file's metadata names, when the library can store and use it; otherwise none (logged)."""
    value = (header.get("trigger_word") or header.get("ss_trigger_word") or "").strip()
    if not value:
        return None
    if not fits_column(value, Lora.trigger_word) or any(ch in value for ch in "\r\n[]"):
        log.warning(
            "imported lora trigger word ignored",
            extra={"chars": len(value), "max_chars": column_max_length(Lora.trigger_word)},
        )
        return None
    return value
