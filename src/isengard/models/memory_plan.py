"""The memory planner: each profile's estimated peak GPU memory for a training run or for generation, which fit a
given GPU, and which one `auto` takes (the fastest that fits, in the order of `profiles.PROFILES`).

Estimates are arithmetic on the model's config, fast enough for every API call:
- weights exactly from the config and each profile's storage format (memory_storage.py);
- the LoRA in fp32 and AdamW's two moments;
- activations, gradients and temporaries from a per-block model calibrated on fake-tensor runs of the real step
  (memory_activations.py, memory_trace.py);
- what the card loses besides: the CUDA context and the caching allocator's slack (stated constants below).

Loading is staged (models/loading.py): text encoders encode and leave before the transformer loads, and fall back to
the CPU when they do not fit, so they never set a training run's peak; the VAE returns only to decode samples.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from isengard.models.bases import BaseFamily, get_base
from isengard.models.flux_layout import FluxLayout
from isengard.models.memory_activations import inference_working_bytes, step_working_bytes
from isengard.models.memory_storage import (
    BF16,
    FP32,
    largest_linear_bf16_bytes,
    layout_bytes,
    lora_numel,
    transformer_bytes,
)
from isengard.models.profiles import (
    PROFILE_NAMES,
    PROFILES,
    MemoryProfile,
    ProfileChoice,
    ProfileName,
    WeightFormat,
)

GIB = 1024**3
# Sizes are shown in GB as GPU makers and nvidia-smi round them (a "24 GB" card holds about 24 x 2^30 bytes).
GB = GIB

# Taken from the card before any tensor exists and never seen by torch.cuda.max_memory_allocated: the CUDA context
# with its loaded kernels, and cuBLAS / cuDNN workspaces (about 0.5-1 GB on recent drivers and cards).
CUDA_CONTEXT_BYTES = GIB
# The caching allocator reserves more than is allocated (block rounding, fragmentation between steps of different
# bucket sizes): a share of the allocated peak.
ALLOCATOR_SLACK = 0.08
# Block offloading keeps this many transformer blocks on the GPU at once: the one running and the next one arriving.
OFFLOAD_RESIDENT_BLOCKS = 2
# The VAE decoding (or encoding) a full-resolution image without gradients: a handful of 128-channel bf16 feature
# maps at full resolution are alive at once (5 x 128 channels x 2 bytes per pixel).
VAE_BYTES_PER_PIXEL = 1280
# AdamW keeps two fp32 moments per trainable parameter.
ADAM_STATES = 2


class ProfileEstimate(BaseModel):
    profile: ProfileName
    estimated_peak_bytes: int
    fits: bool | None  # None: the GPU's size is not known
    breakdown: dict[str, int]  # the parts of the peak, in bytes; they add up to estimated_peak_bytes


class MemoryPlan(BaseModel):
    estimates: list[ProfileEstimate]
    chosen: ProfileName | None  # what `auto` takes; None when the GPU is unknown or nothing fits
    gpu_bytes: int | None
    reason: str

    def estimate(self, profile: ProfileName) -> ProfileEstimate:
        return next(e for e in self.estimates if e.profile == profile)


class ProfileDoesNotFit(ValueError):
    """A profile was asked for whose estimated peak exceeds the GPU."""


def gb(value: int) -> str:
    return f"{value / GB:.1f} GB"


def gpu_size(value: int) -> str:
    """A card's size as it is sold: a 24 GB card reports a little less than 24 x 2^30 bytes."""
    return f"{round(value / GB)} GB"


def _transformer_parts(layout: FluxLayout, weight_format: WeightFormat) -> list[tuple[int, int]]:
    outer, blocks = transformer_bytes(layout, weight_format)
    return [(outer, 1), *blocks]


def _weights_on_gpu(layout: FluxLayout, profile: MemoryProfile) -> int:
    outer, blocks = transformer_bytes(layout, profile.weight_format)
    if not profile.offload_blocks:
        return outer + sum(size * n for size, n in blocks)
    return outer + OFFLOAD_RESIDENT_BLOCKS * max(size for size, n in blocks if n)


NF4_LAYER_COPIES = 5  # bf16 copies of the largest quantized layer alive at a step's peak (see _dequantized_bytes)


def _dequantized_bytes(layout: FluxLayout, profile: MemoryProfile, gradient_checkpointing: bool) -> int:
    """bf16 copies of quantized weights that a step makes. torchao's int8 linear saves the dequantized weight for
    the backward pass: every layer's without checkpointing, one block's with it. NF4 dequantizes one layer at a time
    and saves only the 4-bit weight, but a step's peak still holds several bf16 copies of a layer in flight (the
    forward's, the backward's and their temporaries): the full-size rehearsal measures 3.2 to 6.1 copies of the
    largest layer across FLUX.1 and FLUX.2 klein, resident and swapped (README, memory section); priced at
    NF4_LAYER_COPIES."""
    if profile.weight_format == "bf16":
        return 0
    blocks = [(block, n) for block, n in layout.blocks() if n]
    if profile.weight_format == "int8":
        if gradient_checkpointing:
            return max(layout_bytes(block, "bf16") for block, _ in blocks)
        return sum(layout_bytes(block, "bf16") * n for block, n in blocks)
    return NF4_LAYER_COPIES * max(largest_linear_bf16_bytes(block) for block, _ in blocks)


def _overheads(parts: dict[str, int]) -> dict[str, int]:
    allocated = sum(parts.values())
    return {**parts, "allocator_slack": int(allocated * ALLOCATOR_SLACK), "cuda_context": CUDA_CONTEXT_BYTES}


def _vae_bytes(resolution: int, batch_size: int, vae_params: int) -> int:
    return BF16 * vae_params + VAE_BYTES_PER_PIXEL * resolution * resolution * batch_size


def training_breakdown(
    layout: FluxLayout,
    profile: MemoryProfile,
    *,
    resolution: int,
    batch_size: int,
    rank: int,
    gradient_checkpointing: bool,
    target_modules: list[str],
    vae_params: int,
) -> dict[str, int]:
    """The parts of a training run's peak under one profile (before the context and the allocator's slack): the
    weights, the LoRA and its optimizer state, and the larger of a step's working memory and a sample's (the VAE
    waits in CPU memory and comes back between steps to decode samples, priced at the training resolution)."""
    lora = lora_numel(layout.outer, rank, target_modules) + sum(
        lora_numel(block, rank, target_modules) * n for block, n in layout.blocks()
    )
    # Block offloading always checkpoints (a block's weights could not leave the GPU while the graph needs them).
    checkpointing = gradient_checkpointing or profile.offload_blocks
    step = {
        "activations": step_working_bytes(
            layout, resolution=resolution, batch_size=batch_size, gradient_checkpointing=checkpointing
        ),
        "dequantized_weights": _dequantized_bytes(layout, profile, checkpointing),
    }
    sample = {
        "sampling": _vae_bytes(resolution, 1, vae_params)
        + inference_working_bytes(layout, resolution=resolution, batch_size=1)
    }
    return {
        "transformer_weights": _weights_on_gpu(layout, profile),
        "lora_weights": FP32 * lora,
        "optimizer_state": ADAM_STATES * FP32 * lora,
        **(step if sum(step.values()) >= sum(sample.values()) else sample),
    }


def generation_breakdown(
    layout: FluxLayout,
    profile: MemoryProfile,
    *,
    resolution: int,
    batch_size: int,
    family: BaseFamily,
    text_encoder: dict[str, Any],
) -> dict[str, int]:
    """The parts of a generation's peak, as models/loading.py places the pipeline: every component resident (T5-XXL
    in int8 beside a quantized transformer, in bf16 beside a bf16 one), the peak being the denoising or the VAE's
    decoding on top. With `offload_blocks` every component instead visits the GPU while it runs (diffusers' model
    CPU offload): the peak is the largest component with its working memory."""
    encoder_format: WeightFormat = "bf16" if profile.weight_format == "bf16" else "int8"
    encoders = family.text_encoder_bytes(text_encoder, encoder_format)
    transformer = sum(size * n for size, n in _transformer_parts(layout, profile.weight_format))
    denoise = inference_working_bytes(layout, resolution=resolution, batch_size=batch_size)
    vae = BF16 * family.vae_params
    decode = _vae_bytes(resolution, batch_size, family.vae_params) - vae
    if profile.offload_blocks:
        stages = {"text_encoders": encoders, "transformer": transformer + denoise, "vae": vae + decode}
        largest = max(stages, key=lambda name: stages[name])
        return {f"largest_stage_{largest}": stages[largest]}
    return {
        "transformer_weights": transformer,
        "text_encoders": encoders,
        "vae": vae,
        "largest_stage": max(denoise, decode),
    }


def _plan(estimates: list[ProfileEstimate], gpu_bytes: int | None) -> MemoryPlan:
    if gpu_bytes is None:
        reason = "no GPU: estimates only, nothing to fit them against"
        return MemoryPlan(estimates=estimates, chosen=None, gpu_bytes=None, reason=reason)
    chosen = next((e for e in estimates if e.fits), None)
    if chosen is None:
        smallest = min(estimates, key=lambda e: e.estimated_peak_bytes)
        reason = (
            f"no profile fits this {gpu_size(gpu_bytes)} GPU: the smallest, {smallest.profile}, needs an estimated "
            f"{gb(smallest.estimated_peak_bytes)}"
        )
        return MemoryPlan(estimates=estimates, chosen=None, gpu_bytes=gpu_bytes, reason=reason)
    reason = f"fits your {gpu_size(gpu_bytes)} GPU with {chosen.profile} (est. {gb(chosen.estimated_peak_bytes)})"
    return MemoryPlan(estimates=estimates, chosen=chosen.profile, gpu_bytes=gpu_bytes, reason=reason)


def _estimate(profile: MemoryProfile, parts: dict[str, int], gpu_bytes: int | None) -> ProfileEstimate:
    breakdown = _overheads(parts)
    peak = sum(breakdown.values())
    return ProfileEstimate(
        profile=profile.name,
        estimated_peak_bytes=peak,
        fits=None if gpu_bytes is None else peak <= gpu_bytes,
        breakdown=breakdown,
    )


def plan_training(
    *,
    transformer_config: dict[str, Any],
    resolution: int,
    batch_size: int,
    rank: int,
    gradient_checkpointing: bool,
    gpu_bytes: int | None,
    target_modules: list[str] | None = None,
    text_tokens: int = 512,
    base: str | None = None,
) -> MemoryPlan:
    """Each profile's estimated peak for training a LoRA on `base` (the default base when None) at `resolution` (the
    largest bucket) on a GPU of `gpu_bytes` (the memory the job may use; None when there is no GPU)."""
    family = get_base(base).family
    layout = family.layout(transformer_config, text_tokens=text_tokens)
    targets = target_modules or list(family.lora_targets)
    estimates = [
        _estimate(
            profile,
            training_breakdown(
                layout,
                profile,
                resolution=resolution,
                batch_size=batch_size,
                rank=rank,
                gradient_checkpointing=gradient_checkpointing,
                target_modules=targets,
                vae_params=family.vae_params,
            ),
            gpu_bytes,
        )
        for profile in PROFILES
    ]
    return _plan(estimates, gpu_bytes)


def plan_generation(
    *,
    transformer_config: dict[str, Any],
    resolution: int,
    gpu_bytes: int | None,
    batch_size: int = 1,
    text_encoder_config: dict[str, Any] | None = None,
    text_tokens: int = 512,
    base: str | None = None,
) -> MemoryPlan:
    """Each profile's estimated peak for generating with `base` (the default when None) at `resolution` with the
    transformer resident."""
    spec = get_base(base)
    layout = spec.family.layout(transformer_config, text_tokens=text_tokens)
    encoder = text_encoder_config or spec.text_encoder_config
    estimates = [
        _estimate(
            profile,
            generation_breakdown(
                layout,
                profile,
                resolution=resolution,
                batch_size=batch_size,
                family=spec.family,
                text_encoder=encoder,
            ),
            gpu_bytes,
        )
        for profile in PROFILES
    ]
    return _plan(estimates, gpu_bytes)


def next_profile_that_fits(after: ProfileName, plan: MemoryPlan) -> ProfileName | None:
    """The first profile after `after` (smaller and slower) that fits; None when none does or the GPU is unknown."""
    index = PROFILE_NAMES.index(after)
    return next((e.profile for e in plan.estimates[index + 1 :] if e.fits), None)


def choose_profile(requested: ProfileChoice, plan: MemoryPlan) -> ProfileName:
    """The profile to run: `auto` takes the plan's choice; a named one must fit (or the GPU be unknown)."""
    if requested == "auto":
        if plan.gpu_bytes is None:
            return PROFILES[0].name
        if plan.chosen is None:
            raise ProfileDoesNotFit(plan.reason)
        return plan.chosen
    estimate = plan.estimate(requested)
    if estimate.fits is False:
        assert plan.gpu_bytes is not None
        better = next_profile_that_fits(requested, plan)
        hint = f"; {better} fits" if better else "; no profile fits"
        if better:
            hint += f" (est. {gb(plan.estimate(better).estimated_peak_bytes)})"
        raise ProfileDoesNotFit(
            f"profile {requested} needs an estimated {gb(estimate.estimated_peak_bytes)}, more than this "
            f"{gpu_size(plan.gpu_bytes)} GPU{hint}"
        )
    return requested
