"""Helpers for image-generation tests: a real in-process JobContext and small real LoRA files for the tiny model."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isengard.domain import ArtifactKind
from isengard.plugins.api import Artifact, JobCancelled


@dataclass
class RecordingContext:
    """A JobContext that keeps everything a plugin reports, for tests that run a plugin without the worker."""

    data_dir: Path
    base_model_path: Path
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempt: int = 1
    mode: str = "fast-test"
    cancel_after_progress: int | None = None
    progress: list[tuple[int, int, str | None]] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    logs: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.work_dir = self.data_dir / "outputs" / "unassigned" / self.job_id
        self.work_dir.mkdir(parents=True, exist_ok=True)

    def report_progress(
        self,
        step: int,
        total: int,
        *,
        loss: float | None = None,
        lr: float | None = None,
        stage: str | None = None,
    ) -> None:
        self.progress.append((step, total, stage))

    def emit_sample(self, path: Path, *, step: int, index: int = 0, prompt: str = "") -> Artifact:
        return self.save_artifact(path, ArtifactKind.SAMPLE, step=step, meta={"prompt": prompt, "index": index})

    def save_artifact(
        self,
        path: Path,
        kind: ArtifactKind,
        *,
        name: str | None = None,
        step: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Artifact:
        artifact = Artifact(
            id=uuid.uuid4().hex,
            kind=kind,
            path=path.resolve().relative_to(self.data_dir.resolve()).as_posix(),
            name=name or path.name,
            step=step,
            meta=dict(meta or {}),
        )
        self.artifacts.append(artifact)
        return artifact

    def is_cancelled(self) -> bool:
        steps = [p for p in self.progress if p[2] == "generating"]
        return self.cancel_after_progress is not None and len(steps) >= self.cancel_after_progress

    def raise_if_cancelled(self) -> None:
        if self.is_cancelled():
            raise JobCancelled("cancelled by the test")

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        self.logs.append((level, message, fields))

    def remove_artifact(self, artifact: Artifact) -> None:
        self.artifacts = [a for a in self.artifacts if a.id != artifact.id]
        (self.data_dir / artifact.path).unlink(missing_ok=True)

    def latest_checkpoint(self) -> Path | None:
        return None


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
