"""How the diffusers engine holds FLUX in memory: which profile, and whether it stays resident or visits per call.

Resident is several times faster than diffusers' model CPU offload (which copies every component to the GPU on every
call), so the fastest profile whose whole pipeline fits stays resident; offloading is left for cards where nothing
fits. On a CPU there is nothing to save: the unquantized pipeline, resident.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from isengard.models.profiles import MemoryProfile, ProfileName, profile

GIB = 2**30
# FLUX.1-dev resident at 1024 px, batch 1: weights (with T5 int8 beside a quantized transformer) plus ~2.5 GiB of
# denoising and VAE-decoding activations. The stand-in until the memory planner answers.
_RESIDENT_PEAK_GIB: dict[ProfileName, float] = {"bf16": 34.0, "int8": 18.6, "nf4": 13.6}


@dataclass(frozen=True)
class GenerationSetup:
    profile: MemoryProfile
    placement: str  # "resident" or "offload" (see models.loading.load_generation_pipeline)
    reason: str


def choose_generation_setup(device: torch.device, requested: ProfileName | None = None) -> GenerationSetup:
    if device.type != "cuda":
        name: ProfileName = requested or "bf16"
        return GenerationSetup(profile(name), "resident", f"{name} on the CPU, resident")
    free = torch.cuda.mem_get_info(device)[0]
    fitting = [name for name, peak in _RESIDENT_PEAK_GIB.items() if peak * GIB <= free]
    if requested is not None:
        placement = "resident" if requested in fitting else "offload"
        return GenerationSetup(profile(requested), placement, f"{requested} as configured, {placement}")
    if fitting:
        chosen = fitting[0]
        return GenerationSetup(
            profile(chosen), "resident", f"{chosen} resident: the fastest that fits {free / GIB:.1f} GiB free"
        )
    return GenerationSetup(
        profile("nf4-offload"), "offload", f"nothing fits {free / GIB:.1f} GiB free whole: NF4 with model offload"
    )
