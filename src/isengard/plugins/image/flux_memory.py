"""How the diffusers engine holds FLUX in memory: which profile, and whether it stays resident or visits per call.

Resident is several times faster than diffusers' model CPU offload (which copies every component to the GPU on every
call), so the fastest profile the memory planner says fits stays resident; offloading is left for cards where
nothing fits (the `nf4-offload` profile). On a CPU there is nothing to save: the unquantized pipeline, resident.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from isengard.plugins.api import (
    MemoryPlan,
    MemoryProfile,
    ProfileDoesNotFit,
    ProfileName,
    choose_profile,
    gb,
    plan_generation,
    profile,
)

# Generation is planned for the largest image the engine is usually asked for; smaller ones need less.
PLANNED_RESOLUTION = 1024


@dataclass(frozen=True)
class GenerationSetup:
    profile: MemoryProfile
    placement: str  # "resident" or "offload" (see models.loading.load_generation_pipeline)
    reason: str


def choose_generation_setup(base: Path, device: torch.device, requested: ProfileName | None = None) -> GenerationSetup:
    if device.type != "cuda":
        name: ProfileName = requested or "bf16"
        return GenerationSetup(profile(name), "resident", f"{name} on the CPU, resident")
    from isengard.plugins.api import base_of_folder, transformer_config

    free, _total = torch.cuda.mem_get_info(device)
    # The folder's own base: its text encoder and blocks are what the plan prices (a klein folder is not FLUX.1-dev).
    plan = plan_generation(
        transformer_config=transformer_config(base),
        resolution=PLANNED_RESOLUTION,
        gpu_bytes=int(free),
        base=base_of_folder(base).name,
    )
    return setup_from_plan(plan, requested)


def setup_from_plan(plan: MemoryPlan, requested: ProfileName | None = None) -> GenerationSetup:
    """The fastest profile that fits stays resident; where none does, NF4 with every component offloaded."""
    if requested is None:
        try:
            requested = choose_profile("auto", plan)
        except ProfileDoesNotFit:
            requested = "nf4-offload"
    chosen = profile(requested)
    estimate = plan.estimate(requested)
    placement = "offload" if chosen.offload_blocks or not estimate.fits else "resident"
    peak = gb(estimate.estimated_peak_bytes)
    free = gb(plan.gpu_bytes or 0)
    return GenerationSetup(chosen, placement, f"{requested}, {placement} (est. {peak} of {free} free)")
