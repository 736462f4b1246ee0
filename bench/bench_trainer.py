"""The flux-lora trainer's seconds per step against a bare forward/backward loop on the same model and batch.

Run: `.venv/bin/python bench/bench_trainer.py [--steps 200] [--resolution 128] [--batch 2] [--threads 1]`.
Exits 3 when the ratio is above --max-ratio (see verdict.py).

Both sides run in this process on the tiny FLUX model: the trainer through `FluxLoraTrainer.run` with a context
that only timestamps progress (so the job system is not measured), the reference as the few lines any LoRA loop
needs (same LoRA config, same batch shape, AdamW, clip, step). The ratio is the trainer's own overhead: bucket
sampling, caption dropout, progress reporting, the schedule. Setup (model load, encoding) is excluded on both sides.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw
from verdict import exit_status

from isengard.domain import ArtifactKind, DatasetItem, TrainingInput
from isengard.models.bases.flux1 import FAMILY
from isengard.models.tiny import save_tiny_model
from isengard.plugins.api import Artifact
from isengard.plugins.training.flow_matching import TextEmbedding, flow_matching_loss, sample_sigmas
from isengard.plugins.training.flux_lora import FluxLoraTrainer
from isengard.plugins.training.flux_lora_config import FluxLoraConfig
from isengard.plugins.training.flux_lora_stages import add_lora


class TimingContext:
    """A JobContext that records when each training step was reported, and nothing else."""

    def __init__(self, data_dir: Path, base_model: Path) -> None:
        self.job_id = "bench"
        self.attempt = 1
        self.data_dir = data_dir
        self.work_dir = data_dir / "work"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.mode = "fast-test"
        self.base_model_path = base_model
        self.step_times: list[float] = []

    def base_model_dir(self, base: str, *, distilled: bool = False) -> Path:
        return self.base_model_path  # the default base's tiny model: the only one benched

    def report_progress(self, step: int, total: int, **_: Any) -> None:
        if step > 0:
            self.step_times.append(time.perf_counter())

    def emit_sample(self, path: Path, **_: Any) -> Artifact:
        return Artifact(id="s", kind=ArtifactKind.SAMPLE, path=str(path), name=path.name)

    def save_artifact(self, path: Path, kind: ArtifactKind, **_: Any) -> Artifact:
        return Artifact(id="a", kind=kind, path=str(path), name=path.name)

    def is_cancelled(self) -> bool:
        return False

    def raise_if_cancelled(self) -> None:
        return None

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        return None

    def remove_artifact(self, artifact: Artifact) -> None:
        return None

    def latest_checkpoint(self) -> Path | None:
        return None


def make_dataset(data_dir: Path, count: int, size: int) -> TrainingInput:
    folder = data_dir / "uploads" / "c"
    folder.mkdir(parents=True)
    items = []
    for index in range(count):
        image = Image.new("RGB", (size, size), (40 * index % 255, 120, 200))
        ImageDraw.Draw(image).ellipse((size // 4, size // 4, size // 2 + index, size // 2), fill=(220, 30, 30))
        image.save(folder / f"{index}.png")
        items.append(DatasetItem(image_path=f"uploads/c/{index}.png", caption=f"a photo of [trigger] {index}"))
    return TrainingInput(character_id="c", character_name="Bench", trigger_word="bnch", dataset=items)


def trainer_seconds_per_step(model: Path, data_dir: Path, config: dict[str, Any], warmup: int) -> float:
    ctx = TimingContext(data_dir, model)
    job = make_dataset(data_dir, 4, config["resolutions"][0])
    FluxLoraTrainer(None).run(ctx, {"plugin": "flux-lora", "config": config, "input": job.model_dump()})
    gaps = [b - a for a, b in zip(ctx.step_times[warmup:], ctx.step_times[warmup + 1 :], strict=False)]
    return statistics.median(gaps)


def bare_seconds_per_step(model: Path, config: dict[str, Any], steps: int, warmup: int) -> float:
    from diffusers import FluxPipeline

    parsed = FluxLoraConfig.model_validate(config)
    pipeline = FluxPipeline.from_pretrained(model)
    transformer = pipeline.transformer
    params = add_lora(transformer, parsed)
    transformer.train()
    optimizer = torch.optim.AdamW(params, lr=parsed.learning_rate, weight_decay=parsed.weight_decay)
    side = parsed.resolutions[0] // 8
    latents = torch.randn(parsed.batch_size, 16, side, side)
    text = TextEmbedding(
        torch.randn(parsed.batch_size, parsed.max_sequence_length, 32), torch.randn(parsed.batch_size, 32)
    )
    generator = torch.Generator().manual_seed(0)
    times = []
    for _ in range(steps):
        noise = torch.randn(latents.shape, generator=generator)
        sigmas = sample_sigmas("sigmoid", parsed.batch_size, generator=generator)
        loss = flow_matching_loss(
            FAMILY, transformer, latents, text, noise, sigmas, guidance_scale=1.0, weight_dtype=torch.float32
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, parsed.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter())
    gaps = [b - a for a, b in zip(times[warmup:], times[warmup + 1 :], strict=False)]
    return statistics.median(gaps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadiest on a busy machine)")
    parser.add_argument("--max-ratio", type=float, default=1.5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = {
        "steps": args.steps, "rank": args.rank, "alpha": float(args.rank), "learning_rate": 1e-3,
        "resolutions": [args.resolution], "batch_size": args.batch, "gradient_checkpointing": False,
        "mixed_precision": "fp32", "sample_every": 0, "sample_prompts": [], "checkpoint_every": 0,
        "max_sequence_length": 32, "caption_dropout": 0.05,
    }  # fmt: skip
    warmup = min(10, args.steps // 4)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = save_tiny_model(root / "tiny-flux")
        trainer = trainer_seconds_per_step(model, root / "data", config, warmup)
        bare = bare_seconds_per_step(model, config, args.steps, warmup)
    ratio = trainer / bare
    print(f"tiny FLUX, rank {args.rank}, batch {args.batch}, {args.resolution}px, {args.steps} steps, "
          f"{args.threads} thread(s)")  # fmt: skip
    print(f"trainer: {trainer * 1000:.2f} ms/step   bare loop: {bare * 1000:.2f} ms/step   ratio: {ratio:.2f}")
    if ratio > args.max_ratio:
        print(f"FAIL: the trainer's overhead ratio {ratio:.2f} is above {args.max_ratio}")
    return exit_status(broken=ratio > args.max_ratio)


if __name__ == "__main__":
    sys.exit(main())
