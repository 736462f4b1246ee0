"""Every base and memory profile at full size on a CUDA GPU, in one table (run by bench/gpu_check.sh).

Per base (isengard.models.rehearsal_model.BASES) and profile, with random weights made on the GPU from the published
configs (nothing is downloaded):
- training at 512 px, rank 16, checkpointing: the measured peak (torch.cuda.max_memory_allocated) against the
  planner's estimate of what that counter sees, and s/step of the trainer's step against a bare loop on the same
  model (bench/gpu_memory.py's `measure`, the trainer's own code path);
- generation at 1024 px: s/image of a run of the base's own length (the registry's sample steps; two transformer
  calls a step where the base guides with a negative prompt, as klein Base does), timed over 2 steps and scaled,
  plus the VAE's decode. Each transformer gets its own family's inputs from the registry (latents, text width,
  pooled vector, guidance embedding), so klein's rows are measured like FLUX.1's.
Then captioning s/image (Qwen3-VL-2B at its production sizes, 32 new tokens for one 512 px image) and evaluation
s/image (the face evaluator, dlib on the CPU, one 512 px portrait; where dlib and its weights are not installed the
row says so: face-recognition-models is not in the wheel list, its 100 MB of weights are published as a source
archive only).

`--dry-run` goes through the same bases, profiles and planner estimates without any CUDA call: each model is built
on the meta device (checking its config against the planner's layout) and the table prints the estimates alone;
the measured columns' code (trainer step, bare loop, generation with each family's own inputs) runs on each base's
tiny model on the CPU, and the evaluation row is measured (dlib runs on the CPU anyway).
Everything stops at `--budget` seconds (what is left is printed as skipped), so the whole run fits its 8 minutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_memory import (
    allocated_estimate,
    measure,
    meta_vae,
    prepare_transformer,
    random_latents,
    random_text,
    release,
    timed,
)

from isengard.models.bases import BASES, BaseSpec
from isengard.models.memory_plan import GIB, plan_generation, plan_training
from isengard.models.profiles import PROFILE_NAMES, ProfileName
from isengard.models.rehearsal_model import VAE_CONFIGS

TRAIN_RESOLUTION = 512
GENERATE_RESOLUTION = 1024
RANK = 16
HEADER = (
    f"{'base':<12} {'profile':<12} {'train peak':>10} {'planner':>8} {'ratio':>6} {'s/step':>7} {'bare':>7} "
    f"{'ratio':>6} {'gen s/img':>9}"
)


def training_plan_bytes(base: BaseSpec, name: ProfileName, gpu_bytes: int | None) -> int:
    plan = plan_training(
        transformer_config=base.transformer_config, base=base.name, resolution=TRAIN_RESOLUTION, batch_size=1,
        rank=RANK, gradient_checkpointing=True, gpu_bytes=gpu_bytes,
    )  # fmt: skip
    return allocated_estimate(plan, name)


def generation_seconds(
    base: BaseSpec, name: ProfileName, device: torch.device, *, model_config: dict[str, Any] | None = None,
    vae_config: dict[str, Any] | None = None, resolution: int = GENERATE_RESOLUTION,
) -> float:  # fmt: skip
    """Seconds per image under a profile: the base's denoising steps of the resident transformer (its own inputs,
    through the registry's `predict`) and one decode. The configs default to the published full-size ones."""
    model_config = model_config or base.transformer_config
    vae_config = vae_config or VAE_CONFIGS[base.family.name]
    defaults = base.defaults
    # Guidance with a negative prompt (FLUX.2 klein Base) runs the transformer twice a step; FLUX.1 distils it.
    calls = 2 if defaults.training_guidance is None and defaults.guidance > 1 else 1
    transformer, _params, _swap = prepare_transformer(name, RANK, device, model_config, base)
    transformer.eval()
    latents = random_latents(base, meta_vae(base, vae_config), resolution, device)
    text = random_text(model_config, 512, device)
    sigmas = torch.full((1,), 0.5, device=device)
    held = [transformer]  # emptied before the VAE is built, so the transformer's memory is freed
    del transformer

    def denoise() -> None:
        base.family.predict(
            held[0], latents, text, sigmas, guidance_scale=defaults.guidance, weight_dtype=torch.bfloat16
        )

    with torch.no_grad():
        step = timed(denoise, 2, device)
        held.clear()
        release()
        with torch.device(device):
            vae: Any = base.family.vae_cls()(**vae_config)
        vae.to(torch.bfloat16).eval()
        decode = timed(lambda: vae.decode(decodable(base, latents), return_dict=False), 1, device)
    return defaults.sample_steps * calls * step + decode


def decodable(base: BaseSpec, latents: torch.Tensor) -> torch.Tensor:
    """Latents in the VAE's own layout: FLUX.2's VAE decodes 32 channels at 1/8, which its latents patchify 2x2."""
    latents = latents.to(torch.bfloat16)
    if base.family.name == "flux1":
        return latents
    batch, channels, height, width = latents.shape
    return (
        latents.view(batch, channels // 4, 2, 2, height, width)
        .permute(0, 1, 4, 2, 5, 3)
        .reshape(batch, channels // 4, height * 2, width * 2)
    )


def captioning_seconds(device: torch.device, tokens: int = 32) -> float:
    from PIL import Image

    from isengard.plugins.caption.qwen_vl_tiny import PRODUCTION_SIZES, build_image_processor, build_model
    from isengard.plugins.caption.qwen_vl_tiny import build_tokenizer as tokenizer_factory

    tokenizer = tokenizer_factory()
    with torch.device(device):
        model = build_model(tokenizer, PRODUCTION_SIZES).to(torch.bfloat16)
    processor = build_image_processor(512 * 512)
    pixels = processor(images=[Image.new("RGB", (512, 512), "gray")], return_tensors="pt")
    grid = pixels["image_grid_thw"]
    image_tokens = int(grid.prod()) // 4
    prompt = "<|vision_start|>" + "<|image_pad|>" * image_tokens + "<|vision_end|>Describe."
    ids = tokenizer(prompt, return_tensors="pt")
    inputs = {
        "input_ids": ids["input_ids"].to(device),
        "attention_mask": ids["attention_mask"].to(device),
        "pixel_values": pixels["pixel_values"].to(device, torch.bfloat16),
        "image_grid_thw": grid.to(device),
    }
    with torch.no_grad():
        return timed(lambda: model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens), 2, device)


def evaluation_seconds() -> str:
    """The face evaluator (dlib, a CPU library: the GPU machine's CPU) on one 512 px portrait, models loaded."""
    from PIL import Image

    from isengard.plugins.evaluate.face import FaceEvaluator

    evaluator = FaceEvaluator()
    capability = evaluator.capabilities()
    if not capability.available:
        return f"not measured: {capability.reason}"
    try:
        import skimage.data
    except ImportError:
        return "not measured: no portrait photograph here (scikit-image's astronaut)"
    portrait = Image.fromarray(skimage.data.astronaut())  # 512 x 512, a real photograph
    evaluator.embed_images([portrait])
    seconds = timed(lambda: evaluator.embed_images([portrait]), 3, torch.device("cpu"))
    return f"{seconds:.2f} s/image"


def tiny_code_path(base: BaseSpec) -> str:
    """The measured columns' code (the trainer's step, the bare loop, generation) on the base's tiny model on the
    CPU: the registry's inputs for its family go through the same functions as on the GPU."""
    tiny = base.family.build_tiny(seed=0)
    model = {k: v for k, v in dict(tiny.transformer.config).items() if not k.startswith("_")}
    vae = {k: v for k, v in dict(tiny.vae.config).items() if not k.startswith("_")}
    cpu = torch.device("cpu")
    step = measure("bf16", 64, 1, 4, cpu, model_config=model, text_tokens=8, spec=base, vae_config=vae)
    generate = generation_seconds(base, "bf16", cpu, model_config=model, vae_config=vae, resolution=64)
    return f"step {step['seconds']:.3f} s, bare {step['bare']:.3f} s, generation {generate:.2f} s/image"


def dry_run() -> int:
    """The table's planner columns for every base and profile; each base's models built on the meta device."""
    print(HEADER)
    status = 0
    for base in BASES.values():
        with torch.device("meta"):
            transformer: Any = base.family.transformer_cls()(**base.transformer_config)
            base.family.vae_cls()(**VAE_CONFIGS[base.family.name])
        built = sum(p.numel() for p in transformer.parameters())
        planned_numel = base.family.layout(base.transformer_config).numel
        if built != planned_numel:
            print(f"{base.name}: the planner's layout ({planned_numel}) != built ({built})")
            status = 1
        for name in PROFILE_NAMES:
            planned = training_plan_bytes(base, name, None)
            dashes = " ".join(f"{'-':>{width}}" for width in (6, 7, 7, 6, 9))
            print(f"{base.name:<12} {name:<12} {'-':>10} {planned / GIB:>7.2f}G {dashes}")
        generation = plan_generation(
            transformer_config=base.transformer_config, base=base.name, resolution=GENERATE_RESOLUTION, gpu_bytes=None
        )
        estimates = ", ".join(f"{e.profile} {e.estimated_peak_bytes / GIB:.1f}G" for e in generation.estimates)
        print(f"{base.name:<12} generation planned at {GENERATE_RESOLUTION} px: {estimates}")
        print(f"{base.name:<12} tiny model on the CPU (code path only): {tiny_code_path(base)}")
    print(f"evaluation (face, 512 px): {evaluation_seconds()}")
    print("dry run: no CUDA call made; on a GPU the dashes are measured")
    return status


def gpu_run(budget: float, steps: int) -> int:
    device = torch.device("cuda")
    gpu_bytes = torch.cuda.get_device_properties(0).total_memory
    print(f"{torch.cuda.get_device_name(0)}, {gpu_bytes / GIB:.1f} GiB; torch {torch.__version__}", flush=True)
    started = time.monotonic()
    print(HEADER, flush=True)
    skipped = []
    for base in BASES.values():
        for name in PROFILE_NAMES:
            if time.monotonic() - started > budget:
                skipped.append(f"{base.name}/{name}")
                continue
            result = measure(
                name, TRAIN_RESOLUTION, steps, RANK, device, model_config=base.transformer_config, spec=base
            )
            release()
            planned = training_plan_bytes(base, name, gpu_bytes)
            generate = generation_seconds(base, name, device)
            release()
            print(
                f"{base.name:<12} {name:<12} {result['peak'] / GIB:>9.2f}G {planned / GIB:>7.2f}G "
                f"{result['peak'] / planned:>6.2f} {result['seconds']:>7.3f} {result['bare']:>7.3f} "
                f"{result['seconds'] / result['bare']:>6.2f} {generate:>9.2f}",
                flush=True,
            )
    if time.monotonic() - started < budget:
        caption = statistics.median([captioning_seconds(device)])
        print(f"captioning (Qwen3-VL-2B sizes, 512 px, 32 tokens): {caption:.2f} s/image")
    else:
        skipped.append("captioning")
    if time.monotonic() - started < budget:
        print(f"evaluation (face, 512 px): {evaluation_seconds()}")
    else:
        skipped.append("evaluation")
    if skipped:
        print(f"skipped for time: {', '.join(skipped)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="no CUDA call: planner columns, models on meta")
    parser.add_argument("--budget", type=float, default=420, help="seconds after which what is left is skipped")
    parser.add_argument("--steps", type=int, default=2, help="timed training steps per profile")
    args = parser.parse_args(argv)
    if args.dry_run:
        return dry_run()
    if not torch.cuda.is_available():
        print("no CUDA GPU here: run with --dry-run", file=sys.stderr)
        return 2
    return gpu_run(args.budget, args.steps)


if __name__ == "__main__":
    raise SystemExit(main())
