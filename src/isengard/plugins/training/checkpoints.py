"""Resumable checkpoints: `work_dir/checkpoints/step-NNNNNN/` with the LoRA, the training state, and `COMPLETE`.

The folder convention (and what counts as complete) is plugins/checkpoint_folders.py, shared with the worker.
The LoRA inside is a normal LoRA file (it is also offered in the LoRA library as an intermediate result).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from isengard.plugins.api import COMPLETE, Artifact, atomic_path, atomic_write_bytes, complete_checkpoints
from isengard.plugins.training.lora_io import load_lora_into, save_lora

STATE_FILE = "training_state.pt"
ARTIFACT_FILE = "artifact.json"


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug[:60] or "lora"


def lora_file_name(slug: str, step: int | None = None) -> str:
    return f"{slug}.safetensors" if step is None else f"{slug}-step{step:06d}.safetensors"


@dataclass
class TrainingState:
    """Everything besides the LoRA weights that a resumed run needs to continue the same loss curve."""

    step: int
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    noise_generator: torch.Tensor
    sampler: dict[str, Any]
    torch_rng: torch.Tensor
    cuda_rng: list[torch.Tensor] | None = None


def save_checkpoint(
    folder: Path,
    *,
    transformer: Any,
    lora_name: str,
    rank: int,
    alpha: float,
    metadata: dict[str, Any],
    state: TrainingState,
    alpha_tensors: bool = True,
) -> Path:
    """Write a checkpoint folder; returns the LoRA file inside it (`alpha_tensors`: see lora_io.lora_state_dict)."""
    shutil.rmtree(folder, ignore_errors=True)  # a half-written folder of the same step from a crash
    folder.mkdir(parents=True)
    lora_path = save_lora(
        folder / lora_name, transformer, rank=rank, alpha=alpha, metadata=metadata, alpha_tensors=alpha_tensors
    )
    with atomic_path(folder / STATE_FILE) as tmp:
        torch.save(state.__dict__, tmp)
    atomic_write_bytes(folder / COMPLETE, str(state.step).encode())
    return lora_path


def load_checkpoint(folder: Path, transformer: Any) -> TrainingState:
    """Load the LoRA weights into `transformer` and return the rest of the state."""
    if not (folder / COMPLETE).exists():
        raise ValueError(f"{folder} is not a complete checkpoint")
    lora_files = sorted(folder.glob("*.safetensors"))
    if len(lora_files) != 1:
        raise ValueError(f"{folder} should hold exactly one LoRA file, found {len(lora_files)}")
    load_lora_into(transformer, lora_files[0])
    # weights_only: a checkpoint is data, never code, even if someone swapped the file.
    values = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    return TrainingState(**values)


def remember_artifact(folder: Path, artifact: Artifact) -> None:
    """Keep the artifact's record beside the checkpoint so a resumed attempt can prune it later."""
    atomic_write_bytes(folder / ARTIFACT_FILE, artifact.model_dump_json().encode())


def earlier_checkpoints(work_dir: Path) -> list[tuple[Path, Artifact | None]]:
    """Complete checkpoints of earlier attempts, oldest first, with their artifact record when known."""
    found: list[tuple[Path, Artifact | None]] = []
    for folder in complete_checkpoints(work_dir):
        record = folder / ARTIFACT_FILE
        artifact = None
        if record.exists():
            try:
                artifact = Artifact.model_validate(json.loads(record.read_text()))
            except ValueError:
                artifact = None
        found.append((folder, artifact))
    return found
