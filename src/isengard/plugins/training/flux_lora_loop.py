"""The training run of the `flux-lora` plugin, top to bottom.

1. choose the memory profile; 2. load the models stage by stage (text encoders encode every caption once and leave,
the VAE encodes the images and leaves, then the transformer loads as the profile says and gets the LoRA); 3. optimizer
and schedule; 4. resume from the last checkpoint of an earlier attempt; 5. the loop: batch from one bucket,
flow-matching loss, step, report, sample, checkpoint; 6. save the LoRA and final samples.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from diffusers.optimization import get_scheduler

from isengard.domain import ArtifactKind, TrainingInput
from isengard.plugins.api import (
    Artifact,
    BaseFamily,
    JobContext,
    PluginError,
    checkpoint_dir,
    free_device_memory,
    get_base,
)
from isengard.plugins.training import checkpoints as ckpt
from isengard.plugins.training.buckets import BucketBatchSampler
from isengard.plugins.training.flow_matching import TextEmbedding, flow_matching_loss, sample_sigmas, stack_text
from isengard.plugins.training.flux_lora_config import FluxLoraConfig
from isengard.plugins.training.flux_lora_data import PreparedData
from isengard.plugins.training.flux_lora_profile import (
    ProfileDecision,
    choose_profile,
    is_out_of_memory,
    next_profile_after,
    out_of_memory_message,
    training_plan,
)
from isengard.plugins.training.flux_lora_stages import TrainingModels, load_models
from isengard.plugins.training.lora_io import save_lora
from isengard.plugins.training.sampling import render_samples, sampling_pipeline

log = logging.getLogger(__name__)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
VALIDATION_SEED = 1234
VALIDATION_SIGMAS = (0.2, 0.4, 0.6, 0.8)


def pick_device(mode: str, precision: str) -> tuple[torch.device, torch.dtype]:
    if mode != "fast-test" and torch.cuda.is_available():
        return torch.device("cuda"), DTYPES[precision]
    # Half precision on a CPU is slow and inexact: a CPU always trains in fp32.
    return torch.device("cpu"), torch.float32


def build_optimizer(config: FluxLoraConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if config.optimizer == "adamw8bit":
        import bitsandbytes as bnb  # type: ignore[import-not-found, unused-ignore]

        optimizer: torch.optim.Optimizer = bnb.optim.AdamW8bit(
            params, lr=config.learning_rate, weight_decay=config.weight_decay
        )
        return optimizer
    if config.optimizer == "prodigy":
        from prodigyopt import Prodigy  # type: ignore[import-not-found, unused-ignore]

        optimizer = Prodigy(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        return optimizer
    return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def batch_latents(data: PreparedData, indices: list[int], device: torch.device) -> torch.Tensor:
    return torch.cat([data.latents[i] for i in indices]).to(device)


def batch_text(data: PreparedData, indices: list[int], dropout: float, generator: torch.Generator) -> TextEmbedding:
    chosen = []
    for i in indices:
        # Caption dropout: sometimes train unconditioned, so the LoRA's look does not hinge on exact captions.
        drop = dropout > 0 and float(torch.rand(1, generator=generator)) < dropout
        chosen.append(data.empty_caption if drop else data.captions[data.items[i].image_index])
    return stack_text(chosen)


@torch.no_grad()
def validation_loss(
    family: BaseFamily,
    transformer: Any,
    data: PreparedData,
    config: FluxLoraConfig,
    device: torch.device,
    dtype: torch.dtype,
) -> float:
    """Loss on a fixed batch (same images, noise and noise levels every time): comparable across the run,
    unlike the per-step loss, which is dominated by the random noise level of each step."""
    generator = torch.Generator().manual_seed(VALIDATION_SEED)
    first_size = data.items[0].size
    indices = [i for i, item in enumerate(data.items) if item.size == first_size][:4]
    latents = batch_latents(data, indices, device)
    text = stack_text([data.captions[data.items[i].image_index] for i in indices])
    total = 0.0
    for sigma in VALIDATION_SIGMAS:
        noise = torch.randn(latents.shape, generator=generator).to(device)
        sigmas = torch.full((len(indices),), sigma)
        loss = flow_matching_loss(
            family, transformer, latents, text, noise, sigmas, guidance_scale=config.guidance_scale,
            weight_dtype=dtype,
        )  # fmt: skip
        total += float(loss)
    return total / len(VALIDATION_SIGMAS)


def run_training(
    ctx: JobContext, config: FluxLoraConfig, job: TrainingInput, *, base_model_name: str
) -> dict[str, Any]:
    device, dtype = pick_device(ctx.mode, config.mixed_precision)
    base = Path(ctx.base_model_dir(config.base))  # a PluginError naming what is missing when it is not complete
    if not (base / "model_index.json").exists():
        raise PluginError(f"base model not found at {base} (no model_index.json)")
    decision = choose_profile(config, training_plan(base, config, device))
    ctx.log(decision.reason, memory_profile=decision.profile.name)
    try:
        return _train(ctx, config, job, decision, device, dtype, base_model_name)
    except PluginError:
        raise
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        free_device_memory()
        name = decision.profile.name
        raise PluginError(out_of_memory_message(name, next_profile_after(name, decision.plan))) from exc


def _train(
    ctx: JobContext,
    config: FluxLoraConfig,
    job: TrainingInput,
    decision: ProfileDecision,
    device: torch.device,
    dtype: torch.dtype,
    base_model_name: str,
) -> dict[str, Any]:
    started = time.monotonic()
    torch.manual_seed(config.seed)
    work_dir = Path(ctx.work_dir)
    slug = _slug(job)

    # 1-2. The models, one stage at a time (FLUX.1-dev, or the tiny model in fast-test mode, offline).
    family = get_base(config.base).family
    models: TrainingModels = load_models(ctx, config, job, profile=decision.profile, device=device, dtype=dtype)
    data, transformer, params = models.data, models.transformer, models.params
    ctx.log(f"encoded {data.image_count} images into {len(data.items)} bucketed examples", buckets=_bucket_counts(data))

    # 3. Optimizer and learning-rate schedule (counted in optimizer steps).
    optimizer = build_optimizer(config, params)
    scheduler = get_scheduler(
        config.lr_scheduler, optimizer, num_warmup_steps=config.lr_warmup_steps, num_training_steps=config.steps
    )
    noise_generator = torch.Generator().manual_seed(config.seed)
    sampler = BucketBatchSampler(data.items, config.batch_size, config.seed)

    # 4. Resume where an earlier attempt's last complete checkpoint left off.
    start_step = 0
    kept: list[tuple[Path, Artifact | None]] = ckpt.earlier_checkpoints(work_dir)
    latest = ctx.latest_checkpoint()
    if latest is not None:
        state = ckpt.load_checkpoint(latest, transformer)
        optimizer.load_state_dict(state.optimizer)
        scheduler.load_state_dict(state.scheduler)
        noise_generator.set_state(state.noise_generator)
        sampler.load_state(state.sampler)
        torch.set_rng_state(state.torch_rng)
        start_step = state.step
        ctx.log(f"resumed from the checkpoint of step {start_step}", step=start_step)

    metadata = _metadata(config, job, data, ctx, base_model_name)
    val_start = validation_loss(family, transformer, data, config, device, dtype)
    ctx.log(f"validation loss at step {start_step}: {val_start:.4f}", step=start_step, validation_loss=val_start)
    samples_pipe = sampling_pipeline(family, models.scheduler, models.vae, transformer)

    def samples(step: int) -> None:
        if config.sample_prompts:
            render_samples(
                ctx, family, samples_pipe, data.sample_prompts, negative=data.empty_caption, step=step,
                resolution=config.sample_resolution, num_inference_steps=config.sample_steps,
                guidance_scale=config.sample_guidance, seed=config.sample_seed, device=device, dtype=dtype,
            )  # fmt: skip

    # 5. The loop.
    loss_value = float("nan")
    last_sampled = -1
    for step in range(start_step + 1, config.steps + 1):
        ctx.raise_if_cancelled()
        step_loss = 0.0
        for _ in range(config.gradient_accumulation_steps):
            indices = sampler.next_batch()
            latents = batch_latents(data, indices, device)
            text = batch_text(data, indices, config.caption_dropout, noise_generator)
            noise = torch.randn(latents.shape, generator=noise_generator).to(device)
            sigmas = sample_sigmas(
                config.timestep_sampling, len(indices), generator=noise_generator,
                sigmoid_scale=config.sigmoid_scale, shift=config.timestep_shift,
            )  # fmt: skip
            loss = flow_matching_loss(
                family, transformer, latents, text, noise, sigmas, guidance_scale=config.guidance_scale,
                weight_dtype=dtype,
            )  # fmt: skip
            (loss / config.gradient_accumulation_steps).backward()
            step_loss += float(loss.detach()) / config.gradient_accumulation_steps
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = step_loss
        if not torch.isfinite(torch.tensor(loss_value)):
            raise PluginError(f"the loss became {loss_value} at step {step}: lower the learning rate")
        ctx.report_progress(step, config.steps, loss=loss_value, lr=float(scheduler.get_last_lr()[0]), stage="training")

        if config.sample_every and step % config.sample_every == 0:
            samples(step)
            last_sampled = step
        if config.checkpoint_every and step % config.checkpoint_every == 0 and step < config.steps:
            state = ckpt.TrainingState(
                step=step,
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(),
                noise_generator=noise_generator.get_state(),
                sampler=sampler.state(),
                torch_rng=torch.get_rng_state(),
            )
            _checkpoint(ctx, config, family, transformer, slug, {**metadata, "step": step}, state, kept)

    # 6. The LoRA, the final validation loss and the final samples.
    end_step = max(config.steps, start_step)
    val_end = validation_loss(family, transformer, data, config, device, dtype)
    ctx.log(f"validation loss at step {end_step}: {val_end:.4f}", step=end_step, validation_loss=val_end)
    lora_path = work_dir / ckpt.lora_file_name(slug)
    final_meta = {**metadata, "step": end_step, "validation_loss": round(val_end, 6)}
    save_lora(
        lora_path, transformer, rank=config.rank, alpha=config.alpha, metadata=final_meta,
        alpha_tensors=family.lora_alpha_tensors,
    )  # fmt: skip
    artifact = ctx.save_artifact(lora_path, ArtifactKind.LORA, name=lora_path.name, step=end_step, meta=final_meta)
    if last_sampled != end_step:
        samples(end_step)
    return {
        "lora_artifact_id": artifact.id,
        "lora_path": artifact.path,
        "steps": end_step,
        "resumed_from": start_step or None,
        "final_loss": None if loss_value != loss_value else round(loss_value, 6),
        "validation_loss_start": round(val_start, 6),
        "validation_loss_end": round(val_end, 6),
        "seconds": round(time.monotonic() - started, 2),
        "memory_profile": decision.profile.name,
    }


def _checkpoint(
    ctx: JobContext,
    config: FluxLoraConfig,
    family: BaseFamily,
    transformer: Any,
    slug: str,
    meta: dict[str, Any],
    state: ckpt.TrainingState,
    kept: list[tuple[Path, Artifact | None]],
) -> None:
    step = state.step
    folder = checkpoint_dir(Path(ctx.work_dir), step)
    lora_path = ckpt.save_checkpoint(
        folder,
        transformer=transformer,
        lora_name=ckpt.lora_file_name(slug, step),
        rank=config.rank,
        alpha=config.alpha,
        metadata=meta,
        state=state,
        alpha_tensors=family.lora_alpha_tensors,
    )
    artifact = ctx.save_artifact(lora_path, ArtifactKind.CHECKPOINT, name=lora_path.name, step=step, meta=meta)
    ckpt.remember_artifact(folder, artifact)
    kept[:] = [(path, art) for path, art in kept if path != folder] + [(folder, artifact)]
    # Keep the newest K; the oldest go, records and files.
    while len(kept) > config.keep_checkpoints:
        old_folder, old_artifact = kept.pop(0)
        if old_artifact is not None:
            ctx.remove_artifact(old_artifact)
        shutil.rmtree(old_folder, ignore_errors=True)


def _slug(job: TrainingInput) -> str:
    return ckpt.slugify(job.character_name or job.trigger_word)


def _bucket_counts(data: PreparedData) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in data.items:
        key = f"{item.size[0]}x{item.size[1]}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def _metadata(
    config: FluxLoraConfig, job: TrainingInput, data: PreparedData, ctx: JobContext, base_model: str
) -> dict[str, Any]:
    """What a LoRA file says about itself (safetensors header strings; also the `loras` row's meta)."""
    return {
        "base_model": base_model,
        "base": config.base,
        "trigger_word": job.trigger_word,
        "character": job.character_name,
        "rank": config.rank,
        "alpha": config.alpha,
        "steps": config.steps,
        "learning_rate": config.learning_rate,
        "resolution": max(config.resolutions),
        "resolutions": config.resolutions,
        "dataset_size": data.image_count,
        "trainer": "isengard flux-lora",
        "job_id": ctx.job_id,
    }
