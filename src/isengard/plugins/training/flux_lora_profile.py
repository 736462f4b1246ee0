"""Which memory profile a `flux-lora` run uses, why, and what to say when the GPU runs out of memory anyway.

The plan is made where the job runs: on a CUDA GPU the memory planner estimates each profile's peak for this config
against the GPU's free memory; `auto` takes the fastest that fits and a forced profile that cannot fit is refused
before anything loads. A CPU has no memory to save on a tiny model and computes quantized layers slower, so there
`auto` is the unquantized profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from isengard.plugins.api import (
    PROFILE_NAMES,
    MemoryPlan,
    MemoryProfile,
    PluginError,
    ProfileDoesNotFit,
    ProfileName,
    gb,
    next_profile_that_fits,
    plan_training,
    profile,
)
from isengard.plugins.api import choose_profile as planned_profile
from isengard.plugins.training.flux_lora_config import FluxLoraConfig


@dataclass(frozen=True)
class ProfileDecision:
    profile: MemoryProfile
    reason: str  # shown in the job log: which profile and why
    plan: MemoryPlan | None = None  # None on a CPU


def training_plan(base: Path, config: FluxLoraConfig, device: torch.device) -> MemoryPlan | None:
    """The planner's estimates for this run on this GPU (None without one)."""
    if device.type != "cuda":
        return None
    from isengard.plugins.api import transformer_config

    free, _total = torch.cuda.mem_get_info(device)
    return plan_training(
        transformer_config=transformer_config(base), resolution=max(config.resolutions),
        batch_size=config.batch_size, rank=config.rank, gradient_checkpointing=config.gradient_checkpointing,
        gpu_bytes=int(free), target_modules=config.target_modules, text_tokens=config.max_sequence_length,
        base=config.base,
    )  # fmt: skip


def choose_profile(config: FluxLoraConfig, plan: MemoryPlan | None) -> ProfileDecision:
    requested = config.memory_profile
    if plan is None:
        name: ProfileName = "bf16" if requested == "auto" else requested
        why = (
            "auto on a CPU: the unquantized base (quantized layers save no needed memory here and compute slower)"
            if requested == "auto"
            else "set in the config"
        )
        return ProfileDecision(profile(name), f"memory profile {name}: {why}")
    try:
        chosen = planned_profile(requested, plan)
    except ProfileDoesNotFit as exc:
        raise PluginError(f"memory profile {requested}: {exc}") from exc
    estimate = gb(plan.estimate(chosen).estimated_peak_bytes)
    why = plan.reason if requested == "auto" else f"set in the config (est. {estimate})"
    return ProfileDecision(profile(chosen), f"memory profile {chosen}: {why}", plan)


def next_profile_after(name: ProfileName, plan: MemoryPlan | None) -> ProfileName | None:
    """The next smaller profile that would fit after `name` ran out of memory (None: nothing smaller fits)."""
    if plan is not None:
        return next_profile_that_fits(name, plan)
    later = PROFILE_NAMES[PROFILE_NAMES.index(name) + 1 :]
    return later[0] if later else None


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
