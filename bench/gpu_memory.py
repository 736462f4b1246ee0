"""GPU memory per memory profile: the planner's estimate against the peak a real step measures (FLUX.1-dev on a GPU).

Run on a CUDA machine: `python bench/gpu_memory.py [--steps 3] [--resolutions 512 1024] [--profiles bf16 int8 ...]`.
`--dry-run` runs anywhere in seconds: for every base of the registry (or `--bases ...`) it builds the full-size
transformer and large text encoder (T5-XXL, Qwen3) from the family's own classes on the meta device, checks the
planner's parameter layout against them, and prints the planner's table per profile at 512 and 1024 px; with
`--trace` it also runs FLUX.1-dev's whole step under fake tensors (minutes) against the planner's activation model.

On a GPU the full-size transformer (19 double + 38 single blocks, hidden 3072) is built from its published config
with random weights directly on the GPU: nothing is downloaded, and memory and speed do not depend on the values.
For each profile and resolution it goes through the trainer's own code: the profile's quantization
(models/loading.py's quantization_config), gradient checkpointing, the LoRA (add_lora), block offloading
(attach_block_swap), the optimizer (build_optimizer) and the flow-matching step; it prints the measured peak
(torch.cuda.max_memory_allocated, weights included), the planner's estimate of the same (without the CUDA context
and the allocator's slack, which max_memory_allocated does not see, nor sampling, which the bench skips), s/step,
and s/step of a bare forward/backward loop on the same model and batch. T5-XXL is built the same way and timed
encoding one caption (the text stage).
Exits 1 when a measured peak is outside [0.5, 2] x its estimate, or a step is over 2x the bare loop's time.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from isengard.models.bases import DEFAULT_BASE, BaseSpec, base_names, get_base
from isengard.models.bases.flux1 import FLUX_DEV_TRANSFORMER, T5_XXL_ENCODER, flux_layout, t5_encoder_layout
from isengard.models.memory_plan import GIB, MemoryPlan, plan_generation, plan_training
from isengard.models.profiles import PROFILE_NAMES, ProfileName, profile

OVERHEADS = ("cuda_context", "allocator_slack")
PEAK_BOUNDS = (0.5, 2.0)
MAX_STEP_RATIO = 2.0
TEXT_TOKENS = 512


def plan_at(resolution: int, gpu_bytes: int | None, rank: int, spec: BaseSpec | None = None) -> MemoryPlan:
    spec = spec or get_base(DEFAULT_BASE)
    return plan_training(
        base=spec.name,
        transformer_config=spec.transformer_config,
        resolution=resolution,
        batch_size=1,
        rank=rank,
        gradient_checkpointing=True,
        gpu_bytes=gpu_bytes,
    )


def allocated_estimate(plan: MemoryPlan, name: ProfileName) -> int:
    """The planner's peak without what max_memory_allocated cannot see (context, slack), and with a step's working
    memory where the plan's peak is a sample's (the bench does not sample)."""
    parts = plan.estimate(name).breakdown
    return sum(v for k, v in parts.items() if k not in (*OVERHEADS, "sampling"))


def trace_check(resolutions: list[int], rank: int) -> None:
    """The slow path the planner is calibrated on: a fake-tensor run of the real step on the whole FLUX.1-dev
    (about two minutes per resolution on a CPU) against the per-block model's activations."""
    from isengard.models.memory_activations import step_working_bytes
    from isengard.models.memory_trace import trace_training_step

    layout = flux_layout(FLUX_DEV_TRANSFORMER)
    for resolution in resolutions:
        started = time.perf_counter()
        traced = trace_training_step(
            FLUX_DEV_TRANSFORMER, resolution=resolution, batch_size=1, rank=rank, gradient_checkpointing=True
        )
        planned = step_working_bytes(layout, resolution=resolution, batch_size=1, gradient_checkpointing=True)
        print(
            f"traced step at {resolution} px: working memory {traced.working_bytes / GIB:.3f} GiB, per-block model "
            f"{planned / GIB:.3f} GiB (ratio {planned / traced.working_bytes:.3f}; "
            f"{time.perf_counter() - started:.0f} s)",
            flush=True,
        )


def meta_parameters(spec: BaseSpec) -> tuple[int, int]:
    """Parameters of the base's full-size transformer and large text encoder, built on the meta device from the
    family's own diffusers / transformers classes and the published configs."""
    import transformers

    encoder_cls = getattr(transformers, spec.family.text_encoders[-1].class_name)
    with torch.device("meta"):
        transformer: Any = spec.family.transformer_cls()(**spec.transformer_config)
        encoder: Any = encoder_cls(encoder_cls.config_class(**spec.text_encoder_config))
    return sum(p.numel() for p in transformer.parameters()), sum(p.numel() for p in encoder.parameters())


def dry_run(resolutions: list[int], gpu_gib: float | None, rank: int, bases: list[str] | None = None) -> int:
    gpu = int(gpu_gib * GIB) if gpu_gib else None
    agree = True
    for spec in [get_base(name) for name in bases or base_names()]:
        built, built_text = meta_parameters(spec)
        planned = spec.family.layout(spec.transformer_config).numel
        planned_text = spec.family.large_text_encoder_layout(spec.text_encoder_config).numel
        agree = agree and built == planned and built_text == planned_text
        encoder = spec.family.text_encoders[-1].class_name
        print(f"\n== {spec.label} ({spec.name}) ==")
        print(f"{spec.name} transformer (meta device): {built / 1e9:.3f} B parameters, planner {planned / 1e9:.3f} B")
        print(
            f"{spec.name} text encoder {encoder} (meta device): {built_text / 1e9:.3f} B parameters, "
            f"planner {planned_text / 1e9:.3f} B"
        )
        for task in ("training", "generation"):
            for resolution in resolutions:
                plan = (
                    plan_at(resolution, gpu, rank, spec)
                    if task == "training"
                    else plan_generation(
                        transformer_config=spec.transformer_config, resolution=resolution, gpu_bytes=gpu, base=spec.name
                    )
                )
                setup = (
                    f"rank {rank}, batch 1, checkpointing" if task == "training" else "batch 1, transformer resident"
                )
                print(format_plan(plan, f"{spec.name} {task} at {resolution} px ({setup})"))
    return 0 if agree else 1


def format_plan(plan: MemoryPlan, title: str) -> str:
    lines = [f"\n{title}", f"{'profile':<12} {'peak GB':>8} {'weights':>8} {'other':>8} {'overhead':>8} {'fits':>5}"]
    for e in plan.estimates:
        weights = e.breakdown.get("transformer_weights", 0)
        overhead = sum(e.breakdown.get(k, 0) for k in OVERHEADS)
        other = e.estimated_peak_bytes - weights - overhead
        fits = {True: "yes", False: "no", None: "-"}[e.fits]
        lines.append(
            f"{e.profile:<12} {e.estimated_peak_bytes / GIB:>8.2f} {weights / GIB:>8.2f} {other / GIB:>8.2f} "
            f"{overhead / GIB:>8.2f} {fits:>5}{'  <- auto' if e.profile == plan.chosen else ''}"
        )
    lines.append(f"auto: {plan.chosen} ({plan.reason})")
    return "\n".join(lines)


# --- On a GPU -----------------------------------------------------------------------------------------------------


def prepare_transformer(
    name: ProfileName, rank: int, device: torch.device, model_config: dict[str, Any], spec: BaseSpec | None = None
) -> tuple[Any, list[Any], Any]:
    """The trainer's transformer under a profile, from random weights made on the GPU: the one call site that
    follows the trainer's loading (flux_lora_stages.load_models, step 3) without a model folder. `spec`: the base
    whose class and LoRA targets are used (FLUX.1 [dev] when not given)."""
    from torchao.quantization import quantize_

    from isengard.models import loading
    from isengard.models.offload import attach_block_swap
    from isengard.plugins.training.flux_lora_config import FluxLoraConfig
    from isengard.plugins.training.flux_lora_stages import add_lora

    spec = spec or get_base(DEFAULT_BASE)
    chosen = profile(name)
    with torch.device(device):
        transformer: Any = spec.family.transformer_cls()(**model_config)
    transformer.to(torch.bfloat16)
    quant = loading.quantization_config(chosen.weight_format, model_config)
    if quant is not None:
        # What diffusers does with the trainer's quantization_config as weights load, on a model already in memory:
        # every Linear but those the format cannot store (named in a per-name config; none in FLUX.1-dev).
        method = quant.get_apply_tensor_subclass()
        method = getattr(method, "fqn_to_config", {}).get("re:.*", method)
        skip = set(loading.unquantizable_linears(model_config, chosen.weight_format))
        quantize_(transformer, method, filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear) and fqn not in skip)
    transformer.enable_gradient_checkpointing()
    config = FluxLoraConfig(base=spec.name, rank=rank, alpha=float(rank), memory_profile=name)
    params = add_lora(transformer, config)
    swap = attach_block_swap(transformer, device) if chosen.offload_blocks else None
    transformer.train()
    return transformer, params, swap


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[], None], steps: int, device: torch.device) -> float:
    step()  # warm-up: kernels, allocator, lazy state
    _sync(device)
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(
    name: ProfileName,
    resolution: int,
    steps: int,
    rank: int,
    device: torch.device,
    model_config: dict[str, Any] = FLUX_DEV_TRANSFORMER,
    text_tokens: int = TEXT_TOKENS,
    spec: BaseSpec | None = None,
    vae_config: dict[str, Any] | None = None,
) -> dict[str, float]:
    """One profile at one resolution: the trainer's step and the bare loop (on a CPU, for checking the code path,
    the peak is 0). The transformer gets its own family's inputs (latent channels, text width, pooled vector or
    none, guidance embedding or none) from the base registry (`spec`; FLUX.1 [dev] when not given)."""
    from isengard.plugins.training.flow_matching import flow_matching_loss
    from isengard.plugins.training.flux_lora_config import FluxLoraConfig
    from isengard.plugins.training.flux_lora_loop import build_optimizer

    spec = spec or get_base(DEFAULT_BASE)
    family = spec.family
    # The swap's hooks live with the model; keeping the swap referenced keeps it attached.
    transformer, params, _swap = prepare_transformer(name, rank, device, model_config, spec)
    latents = random_latents(spec, meta_vae(spec, vae_config), resolution, device)
    noise = torch.randn_like(latents)
    text = random_text(model_config, text_tokens, device)
    sigmas = torch.full((1,), 0.5)
    guidance = 1.0
    optimizer = build_optimizer(FluxLoraConfig(base=spec.name, rank=rank), params)

    def trainer_step() -> None:
        loss = flow_matching_loss(
            family, transformer, latents, text, noise, sigmas, guidance_scale=guidance, weight_dtype=torch.bfloat16
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    on_gpu = device.type == "cuda"
    if on_gpu:
        torch.cuda.reset_peak_memory_stats(device)
    trainer_seconds = timed(trainer_step, steps, device)
    peak = torch.cuda.max_memory_allocated(device) if on_gpu else 0

    # The reference: the same model and batch through the few lines any LoRA loop needs (the transformer's inputs
    # as the registry's family makes them, built once outside the timed step).
    bare_optimizer = torch.optim.AdamW(params, lr=1e-4)
    noisy = 0.5 * latents + 0.5 * noise
    target = family.pack(noise - latents).float()

    def bare_step() -> None:
        out = family.predict(
            transformer, noisy, text, sigmas.to(device), guidance_scale=guidance, weight_dtype=torch.bfloat16
        )
        torch.nn.functional.mse_loss(out.float(), target).backward()
        bare_optimizer.step()
        bare_optimizer.zero_grad(set_to_none=True)

    bare_seconds = timed(bare_step, steps, device)
    return {"peak": peak, "seconds": trainer_seconds, "bare": bare_seconds}


def random_latents(spec: BaseSpec, vae: Any, resolution: int, device: torch.device) -> torch.Tensor:
    """Unpacked latents of one image as the family's own encoding makes them (FLUX.1: 16 channels at 1/8; FLUX.2
    patchifies in the VAE's space: 128 at 1/16), their shape found by encoding on the meta device."""
    with torch.no_grad():
        shape = spec.family.encode_image_latents(vae, torch.empty(1, 3, resolution, resolution, device="meta")).shape
    return torch.randn(shape, device=device)


def meta_vae(spec: BaseSpec, config: dict[str, Any] | None = None) -> Any:
    """The base's VAE on the meta device (its published config unless given): shapes only."""
    from isengard.models.rehearsal_model import VAE_CONFIGS

    with torch.device("meta"):
        return spec.family.vae_cls()(**(VAE_CONFIGS[spec.family.name] if config is None else config))


def random_text(model_config: dict[str, Any], tokens: int, device: torch.device) -> Any:
    """One caption's embedding as the family's text stage makes it: a pooled vector only where the transformer
    takes one (FLUX.1's CLIP; FLUX.2 has none)."""
    from isengard.plugins.training.flow_matching import TextEmbedding

    pooled = model_config.get("pooled_projection_dim")
    return TextEmbedding(
        torch.randn(1, tokens, int(model_config["joint_attention_dim"]), device=device),
        None if pooled is None else torch.randn(1, int(pooled), device=device),
    )


def measure_text_encoder(device: torch.device) -> tuple[int, float]:
    from transformers import T5Config, T5EncoderModel

    torch.cuda.reset_peak_memory_stats(device)
    with torch.device(device):
        t5: Any = T5EncoderModel(T5Config(**T5_XXL_ENCODER))
    t5.to(torch.bfloat16).eval()
    ids = torch.randint(0, 32000, (1, TEXT_TOKENS), device=device)
    with torch.no_grad():
        seconds = timed(lambda: t5(ids), 2, device)
    return torch.cuda.max_memory_allocated(device), seconds


def release() -> None:
    """Free what the last measurement held (its models went out of scope) before the next one starts."""
    gc.collect()
    torch.cuda.empty_cache()


def gpu_run(resolutions: list[int], names: list[ProfileName], steps: int, rank: int) -> int:
    device = torch.device("cuda")
    gpu_bytes = torch.cuda.get_device_properties(0).total_memory
    print(f"{torch.cuda.get_device_name(0)}, {gpu_bytes / GIB:.1f} GiB; torch {torch.__version__}", flush=True)
    t5_peak, t5_seconds = measure_text_encoder(device)
    t5_planned = 2 * t5_encoder_layout(T5_XXL_ENCODER).numel
    print(
        f"T5-XXL bf16 encode: peak {t5_peak / GIB:.2f} GiB (weights planned {t5_planned / GIB:.2f}), {t5_seconds:.3f} s"
    )
    header = (
        f"{'profile':<12} {'px':>5} {'measured':>9} {'estimate':>9} {'ratio':>6} {'s/step':>7} {'bare':>7} {'ratio':>6}"
    )
    print(header, flush=True)
    failures = []
    for name in names:
        for resolution in resolutions:
            result = measure(name, resolution, steps, rank, device)
            release()
            estimate = allocated_estimate(plan_at(resolution, gpu_bytes, rank), name)
            peak_ratio = result["peak"] / estimate
            step_ratio = result["seconds"] / result["bare"]
            print(
                f"{name:<12} {resolution:>5} {result['peak'] / GIB:>8.2f}G {estimate / GIB:>8.2f}G {peak_ratio:>9.2f} "
                f"{result['seconds']:>9.3f} {result['bare']:>9.3f} {step_ratio:>9.2f}",
                flush=True,
            )
            if not PEAK_BOUNDS[0] <= peak_ratio <= PEAK_BOUNDS[1] or step_ratio > MAX_STEP_RATIO:
                failures.append(f"{name}@{resolution}")
    print("measured: torch.cuda.max_memory_allocated (weights included); estimate: the planner's peak less the CUDA")
    print("context, the allocator's slack and the VAE; bare: a plain forward/backward/AdamW loop on the same model")
    if failures:
        print(f"outside the bounds: {', '.join(failures)}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="meta device only: the planner's table, no GPU")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--profiles", nargs="+", choices=PROFILE_NAMES, default=list(PROFILE_NAMES))
    parser.add_argument("--steps", type=int, default=3, help="timed steps per profile and resolution")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--bases", nargs="+", choices=base_names(), default=None, help="dry run: these bases (all)")
    parser.add_argument("--gpu-memory", type=float, default=None, help="GPU size in GiB for the dry run's fits")
    parser.add_argument(
        "--trace", action="store_true", help="with --dry-run: also trace the whole model with fake tensors (slow)"
    )
    args = parser.parse_args(argv)
    if args.dry_run:
        status = dry_run(args.resolutions, args.gpu_memory, args.rank, args.bases)
        if args.trace:
            trace_check(args.resolutions, args.rank)
        return status
    if not torch.cuda.is_available():
        print("no CUDA GPU here: run with --dry-run for the planner's table", file=sys.stderr)
        return 2
    return gpu_run(args.resolutions, args.profiles, args.steps, args.rank)


if __name__ == "__main__":
    raise SystemExit(main())
