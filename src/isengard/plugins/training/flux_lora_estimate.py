"""What a flux-lora run would take: its buckets and epochs, and its time at the measured speed.

Before any run was measured the speed is a stated default (the tiny model on a CPU, or FLUX.1-dev in bf16 on a
24 GB-class GPU) scaled by pixels, batch and gradient checkpointing; once runs are measured their median speed at
the run's resolution is used as is. Sampling during the run is added either way.
"""

from __future__ import annotations

import math

from isengard.domain import TrainingInput
from isengard.plugins.api import Estimate, MeasuredSpeed
from isengard.plugins.training.buckets import assign_buckets
from isengard.plugins.training.flux_lora_config import FluxLoraConfig
from isengard.plugins.training.interface import (
    DEFAULT_BASIS,
    DEFAULT_SECONDS_PER_STEP,
    DEFAULT_SETUP_SECONDS,
    dataset_warnings,
    measured_basis,
)

# Seconds per sampling denoising step by mode, at the reference side.
SAMPLE_STEP_SECONDS = {"fast-test": 0.01, "production": 0.4}
REFERENCE_SIDE = {"fast-test": 128, "production": 1024}


def estimate_run(config: FluxLoraConfig, dataset: TrainingInput, measured: MeasuredSpeed | None, mode: str) -> Estimate:
    resolutions = list(config.resolutions or [1024])
    items = assign_buckets([(i.width or 1024, i.height or 1024) for i in dataset.dataset], resolutions)
    steps = config.steps
    batch = config.batch_size * config.gradient_accumulation_steps
    epochs = steps * batch / max(1, len(items))
    reference = REFERENCE_SIDE[mode]
    if measured is not None:
        seconds_per_step = measured.seconds_per_step
        basis = measured_basis(measured)
    else:
        # Time grows with pixels; gradient checkpointing recomputes activations.
        per_pixel = sum((item.size[0] * item.size[1]) / reference**2 for item in items) / max(1, len(items))
        checkpointing = 1.3 if config.gradient_checkpointing else 1.0
        seconds_per_step = DEFAULT_SECONDS_PER_STEP[mode] * batch * per_pixel * checkpointing
        basis = f"{DEFAULT_BASIS[mode]} (default: no run measured yet)"
    sample_every = config.sample_every or 0
    sample_runs = (steps // sample_every if sample_every else 0) + 1
    sample_seconds = (
        sample_runs
        * len(config.sample_prompts or [])
        * config.sample_steps
        * SAMPLE_STEP_SECONDS[mode]
        * (config.sample_resolution / reference) ** 2
    )
    return Estimate(
        examples=len(items),
        steps=steps,
        epochs=round(epochs, 2),
        seconds_per_step=round(seconds_per_step, 4),
        estimated_seconds=math.ceil(DEFAULT_SETUP_SECONDS[mode] + steps * seconds_per_step + sample_seconds),
        basis=basis,
        warnings=dataset_warnings(len(dataset.dataset), epochs, production=mode == "production"),
    )
