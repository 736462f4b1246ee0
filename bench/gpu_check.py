"""Every base and memory profile at full size on a CUDA GPU, in one table (run by bench/gpu_check.sh).

Per base (isengard.models.rehearsal_model.BASES) and profile, with random weights made on the GPU from the published
configs (nothing is downloaded):
- training at 512 px, rank 16, checkpointing: the measured peak (torch.cuda.max_memory_allocated) against the
  planner's estimate of what that counter sees, and s/step of the trainer's step against a bare loop on the same
  model (bench/gpu_memory.py's `measure`, the trainer's own code path);
- generation at 1024 px: s/image of a FLUX.1-dev-length run (28 steps, timed over 2 and scaled) plus the VAE's decode.
Then captioning s/image (Qwen3-VL-2B at its production sizes, 32 new tokens for one 512 px image). Identity and
adherence evaluation s/image is not measured here: the evaluator plugins are not in this tree yet.

`--dry-run` goes through the same bases, profiles and planner estimates without any CUDA call: each model is built
on the meta device (checking its config against the planner's layout) and the table prints the estimates alone.
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

from gpu_memory import allocated_estimate, measure, prepare_transformer, release, timed

from isengard.models.bases import BASES, BaseSpec
from isengard.models.memory_plan import GIB, plan_generation, plan_training
from isengard.models.profiles import PROFILE_NAMES, ProfileName
from isengard.models.rehearsal_model import VAE_CONFIGS

TRAIN_RESOLUTION = 512
GENERATE_RESOLUTION = 1024
GENERATION_STEPS = 28
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


def generation_seconds(base: BaseSpec, name: ProfileName, device: torch.device) -> float:
    """Seconds per 1024 px image under a profile: denoising steps of the resident transformer and one decode."""
    from isengard.plugins.training.flow_matching import latent_ids, pack

    transformer, _params, _swap = prepare_transformer(name, RANK, device, base.transformer_config)
    transformer.eval()
    side = GENERATE_RESOLUTION // 8
    latents = torch.randn(1, 16, side, side, device=device)
    tokens = 512
    inputs = {
        "hidden_states": pack(latents).to(torch.bfloat16),
        "encoder_hidden_states": torch.randn(1, tokens, base.transformer_config["joint_attention_dim"], device=device,
                                             dtype=torch.bfloat16),
        "pooled_projections": torch.randn(1, base.transformer_config["pooled_projection_dim"], device=device,
                                          dtype=torch.bfloat16),
        "timestep": torch.full((1,), 0.5, device=device, dtype=torch.bfloat16),
        "guidance": torch.full((1,), 3.5, device=device),
        "txt_ids": torch.zeros(tokens, 3, device=device, dtype=torch.bfloat16),
        "img_ids": latent_ids(latents).to(torch.bfloat16),
    }  # fmt: skip
    held = [transformer]  # emptied before the VAE is built, so the transformer's memory is freed
    del transformer

    def denoise() -> None:
        held[0](**inputs, return_dict=False)

    with torch.no_grad():
        step = timed(denoise, 2, device)
        held.clear()
        release()
        with torch.device(device):
            vae: Any = base.family.vae_cls()(**VAE_CONFIGS[base.family.name])
        vae.to(torch.bfloat16).eval()
        decode = timed(lambda: vae.decode(latents.to(torch.bfloat16), return_dict=False), 1, device)
    return GENERATION_STEPS * step + decode


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
            if base.family.name != "flux1":
                # gpu_memory.measure feeds FLUX.1's transformer (pooled CLIP input, guidance): klein needs its own.
                skipped.append(f"{base.name}/{name} (FLUX.1 inputs only)")
                continue
            if time.monotonic() - started > budget:
                skipped.append(f"{base.name}/{name}")
                continue
            result = measure(name, TRAIN_RESOLUTION, steps, RANK, device, model_config=base.transformer_config)
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
    print("evaluation s/image: not measured (no evaluator plugin in this tree)")
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
