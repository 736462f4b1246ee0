"""Which memory profile a `flux-lora` run uses, why, and what to say when the GPU runs out of memory anyway.

The plan is made where the job runs: on a CUDA GPU `auto` is the fastest profile the memory planner says fits this
card for this config; a forced profile that cannot fit is refused before loading. A CPU has no memory to save on a
tiny model and computes quantized layers slower, so there `auto` is the unquantized profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from isengard.models.profiles import PROFILES, MemoryProfile, ProfileName, profile
from isengard.plugins.api import PluginError
from isengard.plugins.training.flux_lora_config import FluxLoraConfig

GIB = 2**30
# Estimated step peaks of FLUX.1-dev at 1024 px, batch 1, rank 16, checkpointing on, plus CUDA context and slack:
# the stand-in until the memory planner answers (bf16 25.1 GiB, int8 14.0, NF4 9.1 measured with a fake-tensor run;
# block offloading keeps about two blocks resident).
_FALLBACK_PEAK_GIB: dict[ProfileName, float] = {"bf16": 26.6, "int8": 15.5, "nf4": 10.6, "nf4-offload": 5.5}


@dataclass(frozen=True)
class ProfileDecision:
    profile: MemoryProfile
    reason: str  # shown in the job log: which profile and why


def _gpu_bytes(device: torch.device) -> int:
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def _fits(name: ProfileName, gpu_bytes: int) -> bool:
    return _FALLBACK_PEAK_GIB[name] * GIB <= gpu_bytes


def choose_profile(config: FluxLoraConfig, device: torch.device) -> ProfileDecision:
    requested = config.memory_profile
    if device.type != "cuda":
        name: ProfileName = "bf16" if requested == "auto" else requested
        why = (
            "auto on a CPU: the unquantized base (quantized layers save no needed memory here and compute slower)"
            if requested == "auto"
            else "set in the config"
        )
        return ProfileDecision(profile(name), f"memory profile {name}: {why}")
    free = _gpu_bytes(device)
    fitting = [p.name for p in PROFILES if _fits(p.name, free)]
    if requested == "auto":
        if not fitting:
            raise PluginError(f"no memory profile fits the {free / GIB:.1f} GiB free on this GPU")
        chosen = fitting[0]
        return ProfileDecision(
            profile(chosen),
            f"memory profile {chosen}: the fastest that fits {free / GIB:.1f} GiB free "
            f"(estimated peak {_FALLBACK_PEAK_GIB[chosen]:.1f} GiB)",
        )
    if requested not in fitting:
        raise PluginError(
            f"memory profile {requested} needs about {_FALLBACK_PEAK_GIB[requested]:.1f} GiB but this GPU has "
            f"{free / GIB:.1f} GiB free" + (f": use {fitting[0]} or auto" if fitting else "")
        )
    return ProfileDecision(profile(requested), f"memory profile {requested}: set in the config")


def next_profile_after(name: ProfileName, config: FluxLoraConfig, device: torch.device) -> ProfileName | None:
    """The next smaller profile that would fit after `name` ran out of memory (None: nothing smaller fits)."""
    names = [p.name for p in PROFILES]
    later = names[names.index(name) + 1 :]
    if device.type != "cuda":
        return later[0] if later else None
    free = _gpu_bytes(device)
    return next((candidate for candidate in later if _fits(candidate, free)), None)


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def out_of_memory_message(name: ProfileName, next_fit: ProfileName | None) -> str:
    """What a user reads when a run ran out of GPU memory under profile `name`."""
    lead = f"the GPU ran out of memory with the {name} memory profile"
    if next_fit is not None:
        return (
            f"{lead}: the {next_fit} profile would fit (set memory_profile to {next_fit}, or auto); "
            "or lower batch_size (1), drop the largest resolution, enable gradient_checkpointing, lower the rank, or "
            "use the adamw8bit optimizer"
        )
    return (
        f"{lead}, the smallest there is: lower batch_size (1), drop the largest resolution, enable "
        "gradient_checkpointing, lower the rank, or use the adamw8bit optimizer"
    )
