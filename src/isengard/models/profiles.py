"""Memory profiles: the named ways a FLUX transformer can be held in GPU memory, fastest first.

One vocabulary for the trainer, the generation engine, the memory planner, the API and the CLI. A profile fixes how
the frozen base is stored (bf16, int8 or NF4 weights) and whether transformer blocks are swapped between CPU and GPU
memory; LoRA weights and optimizer state are always full precision. `auto` is not a profile: it asks the planner for
the fastest profile that fits the GPU the job runs on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

ProfileName = Literal["bf16", "int8", "nf4", "nf4-offload"]
ProfileChoice = Literal["auto", "bf16", "int8", "nf4", "nf4-offload"]
WeightFormat = Literal["bf16", "int8", "nf4"]


@dataclass(frozen=True)
class MemoryProfile:
    name: ProfileName
    weight_format: WeightFormat
    offload_blocks: bool
    summary: str


PROFILES: tuple[MemoryProfile, ...] = (
    MemoryProfile("bf16", "bf16", False, "bf16 base, fastest; needs the most memory"),
    MemoryProfile("int8", "int8", False, "8-bit base: about half the weight memory, close to bf16 speed"),
    MemoryProfile("nf4", "nf4", False, "4-bit NF4 base (QLoRA): about a quarter of the weight memory"),
    MemoryProfile(
        "nf4-offload", "nf4", True, "NF4 base with transformer blocks swapped to CPU memory: smallest, slowest"
    ),
)

PROFILE_NAMES: tuple[ProfileName, ...] = get_args(ProfileName)


def profile(name: ProfileName) -> MemoryProfile:
    return next(p for p in PROFILES if p.name == name)
