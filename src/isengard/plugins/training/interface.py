"""The training plugin interface: a config model, `train(ctx, job)`, and an estimate of what a run would take."""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel

from isengard.domain import PluginKind, TrainingInput
from isengard.plugins.api import Estimate, JobContext, MeasuredSpeed, Plugin

# The one recommended dataset size: the estimate's warning here, the dataset report and the checklist say the same.
RECOMMENDED_IMAGES = 10
RECOMMENDED_MAX_IMAGES = 30
RECOMMENDED_RANGE = f"{RECOMMENDED_IMAGES}-{RECOMMENDED_MAX_IMAGES}"
# Seconds per step before any run was measured, by mode: the tiny model on a CPU, FLUX.1-dev on a 24 GB-class GPU.
DEFAULT_SECONDS_PER_STEP = {"fast-test": 0.03, "production": 1.5}
DEFAULT_SETUP_SECONDS = {"fast-test": 3.0, "production": 120.0}
DEFAULT_BASIS = {"fast-test": "tiny model on a CPU", "production": "FLUX.1-dev in bf16 on a 24 GB-class GPU"}


class TrainingJob(BaseModel):
    """The payload of a training job: the plugin's validated config and the dataset snapshot."""

    plugin: str
    config: dict[str, Any]
    input: TrainingInput


def measured_basis(measured: MeasuredSpeed) -> str:
    at = f" at {measured.resolution} px" if measured.resolution else ""
    runs = "run" if measured.runs == 1 else f"{measured.runs} recent runs"
    return f"median speed of {runs}{at} on {measured.device}"


def dataset_warnings(images: int, epochs: float, *, production: bool) -> list[str]:
    warnings = []
    if images < RECOMMENDED_IMAGES and production:
        warnings.append(f"{images} images: likeness improves with {RECOMMENDED_RANGE} varied photos")
    if epochs > 150:
        warnings.append(f"each example is seen about {epochs:.0f} times: watch the samples for overfitting")
    return warnings


class TrainingPlugin(Plugin):
    kind: ClassVar[PluginKind] = PluginKind.TRAINING
    config_model: ClassVar[type[BaseModel]]

    def validate_config(self, config: dict[str, Any]) -> BaseModel:
        return self.config_model.model_validate(config)

    @abstractmethod
    def train(self, ctx: JobContext, config: BaseModel, job: TrainingInput) -> dict[str, Any]:
        """Train; save the LoRA through `ctx.save_artifact(..., ArtifactKind.LORA)`; return a summary."""

    def run(self, ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        job = TrainingJob.model_validate(payload)
        return self.train(ctx, self.validate_config(job.config), job.input)

    def speed_resolution(self, config: BaseModel) -> int | None:
        """The resolution a run's speed is recorded and looked up under: the largest one it trains at."""
        values = getattr(config, "resolutions", None) or [getattr(config, "resolution", None)]
        sides = [int(v) for v in values if isinstance(v, int | float)]
        return max(sides) if sides else None

    def estimate(self, config: BaseModel, dataset: TrainingInput, measured: MeasuredSpeed | None) -> Estimate:
        """Time for `steps` steps at the measured speed (the stated default before any run), plus setup."""
        steps = int(getattr(config, "steps", 0))
        images = len(dataset.dataset)
        epochs = steps * int(getattr(config, "batch_size", 1)) / max(1, images)
        mode = self.host.mode
        seconds_per_step = measured.seconds_per_step if measured else DEFAULT_SECONDS_PER_STEP[mode]
        basis = measured_basis(measured) if measured else f"{DEFAULT_BASIS[mode]} (default: no run measured yet)"
        return Estimate(
            examples=images,
            steps=steps,
            epochs=round(epochs, 2),
            seconds_per_step=round(seconds_per_step, 4),
            estimated_seconds=math.ceil(DEFAULT_SETUP_SECONDS[mode] + steps * seconds_per_step),
            basis=basis,
            warnings=dataset_warnings(images, epochs, production=self.host.production),
        )
