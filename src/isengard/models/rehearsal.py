"""The production path rehearsed at full size on a fake CUDA GPU: every stage, every memory profile, no GPU.

A full-size base folder without weights (rehearsal_model.py) is loaded and run by the project's own code under
`fake_cuda()` (fake_cuda.py): tensors have real shapes, dtypes and devices but no storage, and every operation checks
them, so a tensor left on the CPU, a dtype only bf16 on CUDA meets, or a shape only the full width has fails here
as it would on the card. Each stage is measured with MemTracker (memory_trace.py) on the GPU's devices.

Training, as flux_lora_stages.load_models and flux_lora_loop run it:
1. text encoders: `text_encoder_device`, `load_text_encoders`, one caption through `encode_text`, freed;
2. VAE: `load_vae`, one image through `encode_image`, then the VAE waits in CPU memory;
3. transformer: `load_transformer` as the profile stores it, gradient checkpointing, `add_lora`,
   `attach_block_swap` for the offload profile;
4. one training step: the loss forward on the fake GPU (devices and dtypes checked), then the same step with its
   backward, gradient clipping and optimizer step on the meta device (a CPU-only build's autograd engine cannot
   run a backward on CUDA tensors, see fake_cuda.py), which is where its peak is measured;
5. one sample: a denoising step of the sampling pipeline and the VAE's decode, on the fake GPU.

Generation, as the diffusers image plugin runs it: `load_generation_pipeline` with the profile's placement
(resident, or model CPU offload), one denoising step and the decode.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from isengard.models.memory_trace import LATENT_CHANNELS, VAE_SCALE

GPU_DEVICE_TYPES = ("cuda", "meta")  # meta stands in for the GPU where a CPU build cannot run CUDA (backward)
ENCODING_STAGES = ("text_encoders", "vae_encode")
CAPTION = "a photo of sks person standing in a library, warm light"


@dataclass
class RehearsalResult:
    base: str
    profile: str
    task: str  # "training" or "generation"
    resolution: int
    stages: dict[str, int] = field(default_factory=dict)  # GPU peak bytes of each stage
    seconds: dict[str, float] = field(default_factory=dict)  # CPU time each stage took here (the rehearsal's cost)

    @property
    def peak_bytes(self) -> int:
        return max(self.stages.values(), default=0)

    @property
    def loop_peak_bytes(self) -> int:
        """The peak once the transformer is loaded: what the planner prices. The text and VAE stages come first and
        leave; their encoders go to the GPU only where they fit its free memory alone (text_encoder_device)."""
        return max((v for k, v in self.stages.items() if k not in ENCODING_STAGES), default=0)


class _Stages:
    """Runs stages one after another, each inside a MemTracker; records each one's GPU peak."""

    def __init__(self, result: RehearsalResult) -> None:
        self.result = result

    @contextlib.contextmanager
    def stage(self, name: str, *external: Any, devices: tuple[str, ...] = ("cuda",)) -> Iterator[None]:
        """`devices`: what counts as GPU memory here (the meta device only where it stands in for the GPU: the
        meta skeletons models are built on before loading are no memory)."""
        from isengard.models.memory_trace import _peak_tracker

        tracker = _peak_tracker()
        if external:
            tracker.track_external(*external)
        started = time.perf_counter()
        with tracker:
            yield
        self.result.seconds[name] = time.perf_counter() - started
        peak = tracker.get_tracker_snapshot("peak")
        self.result.stages[name] = sum(
            int(counts.get("Total", 0)) for device, counts in peak.items() if device.type in devices
        )


LossFn = Callable[..., torch.Tensor]


@dataclass
class _Encoded:
    """What the text and VAE stages leave for the transformer's: one caption's embedding, one image's latents, the
    VAE (in CPU memory; None when the stages were skipped), and the peaks of those stages."""

    text: Any
    negative: Any  # the empty caption: the negative prompt of the samples (klein Base guides with one)
    latents: torch.Tensor
    vae: Any
    stages: dict[str, int]


def _encode(folder: Path, family: Any, *, resolution: int, max_sequence_length: int) -> _Encoded:
    """Stages 1 and 2, as load_models runs them (the same for every profile)."""
    from PIL import Image

    from isengard.models.loading import free_memory, load_text_encoders, load_vae, text_encoder_device
    from isengard.plugins.training.flux_lora_data import encode_image

    result = RehearsalResult(base="", profile="", task="", resolution=resolution)
    stages = _Stages(result)
    dtype, cuda = torch.bfloat16, torch.device("cuda")
    with stages.stage("text_encoders"):
        text_device = text_encoder_device(folder, cuda)
        text_pipe = load_text_encoders(folder, dtype=dtype, device=text_device)
        with torch.no_grad():
            text, negative = (
                family.encode_prompt(text_pipe, prompt, device=text_device, max_sequence_length=max_sequence_length)
                for prompt in (CAPTION, "")
            )
        del text_pipe
        free_memory()
    with stages.stage("vae_encode"):
        vae = load_vae(folder, dtype=dtype, device=cuda)
        latents = encode_image(family, vae, Image.new("RGB", (resolution, resolution)), device=cuda)
        vae.to("cpu")
        free_memory()
    return _Encoded(text=text, negative=negative, latents=latents, vae=vae, stages=result.stages)


def _moved(text: Any, device: torch.device) -> Any:
    from isengard.plugins.training.flow_matching import TextEmbedding

    pooled = text.pooled_prompt_embeds
    return TextEmbedding(text.prompt_embeds.to(device), None if pooled is None else pooled.to(device))


def _train_profile(
    folder: Path, family: Any, encoded: _Encoded, result: RehearsalResult, *, base_name: str, rank: int,
    loss_fn: LossFn,
) -> None:  # fmt: skip
    """Stages 3 to 5 for one profile."""
    from isengard.models.loading import load_scheduler, load_transformer
    from isengard.models.offload import attach_block_swap
    from isengard.models.profiles import profile
    from isengard.plugins.training.flux_lora_config import FluxLoraConfig
    from isengard.plugins.training.flux_lora_loop import build_optimizer
    from isengard.plugins.training.flux_lora_stages import add_lora
    from isengard.plugins.training.sampling import sampling_pipeline

    chosen = profile(result.profile)  # type: ignore[arg-type]
    dtype, cuda, meta = torch.bfloat16, torch.device("cuda"), torch.device("meta")
    config = FluxLoraConfig(base=base_name, rank=rank, alpha=float(rank), memory_profile=chosen.name)
    stages = _Stages(result)
    text, latents = encoded.text, encoded.latents
    noise = torch.randn(latents.shape)
    sigmas = torch.full((1,), 0.5)
    guidance = 1.0

    # 3. The transformer as the profile stores it, with the LoRA, placed.
    with stages.stage("transformer_load"):
        transformer = load_transformer(folder, profile=chosen, dtype=dtype, device=cuda)
        transformer.enable_gradient_checkpointing()
        add_lora(transformer, config)
        swap = attach_block_swap(transformer, cuda) if chosen.offload_blocks else None
        transformer.train()

    # 4. One step: the loss forward on the fake GPU checks devices and dtypes...
    with stages.stage("training_forward", transformer):
        loss = loss_fn(
            family, transformer, latents.to(cuda), text, noise.to(cuda), sigmas, guidance_scale=guidance,
            weight_dtype=dtype,
        )  # fmt: skip
        del loss
    # 5. One sample on the fake GPU (before the step moves the model to the meta device): denoising and the decode.
    if encoded.vae is not None:
        with stages.stage("sample", transformer):
            pipeline = sampling_pipeline(family, load_scheduler(folder), encoded.vae, transformer)
            _sample(family, pipeline, text, encoded.negative, result.resolution, cuda, guidance=config.sample_guidance)

    # ... and the whole step, backward and optimizer included, runs on the meta device.
    transformer.to(meta)
    if swap is not None:
        swap.device = meta
    params = [p for p in transformer.parameters() if p.requires_grad]  # moved: new parameter objects
    optimizer = build_optimizer(config, params)
    meta_text = _moved(text, meta)
    with stages.stage("training_step", transformer, optimizer, devices=GPU_DEVICE_TYPES):
        for _ in range(2):  # the second step holds the optimizer state: the steady peak
            loss = loss_fn(
                family, transformer, latents.to(meta), meta_text, noise.to(meta), sigmas, guidance_scale=guidance,
                weight_dtype=dtype,
            )  # fmt: skip
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)


def _caption_embedding(folder: Path, tokens: int) -> Any:
    """What the text stage returns for one caption, made directly (CPU tensors, as it returns them)."""
    from isengard.models.loading import transformer_config
    from isengard.plugins.training.flow_matching import TextEmbedding

    config = transformer_config(folder)
    dtype = torch.bfloat16
    pooled = config.get("pooled_projection_dim")
    return TextEmbedding(
        torch.empty(1, tokens, int(config["joint_attention_dim"]), dtype=dtype),
        None if pooled is None else torch.empty(1, int(pooled), dtype=dtype),
    )


def _sample(
    family: Any, pipeline: Any, text: Any, negative: Any, resolution: int, device: torch.device, *, guidance: float
) -> None:
    """render_samples' call of the pipeline (it also writes the PNG): the VAE visits the device to decode."""
    dtype = torch.bfloat16
    transformer = pipeline.transformer
    transformer.eval()
    pipeline.vae.to(device)
    try:
        # Two steps: one step's single sigma would be a fake-tensor constant, computed for real on "CUDA".
        pipeline(
            **family.prompt_kwargs(text, negative=negative, device=device, dtype=dtype), height=resolution,
            width=resolution, num_inference_steps=2, guidance_scale=guidance,
            generator=torch.Generator(device="cpu").manual_seed(0), output_type="pt",
        )  # fmt: skip
    finally:
        transformer.train()
        pipeline.vae.to("cpu")


def rehearse_training(
    folder: Path,
    profiles: list[str],
    *,
    base: str,
    gpu_bytes: int,
    resolution: int = 512,
    rank: int = 16,
    loss_fn: LossFn | None = None,
    encode: bool = True,
) -> list[RehearsalResult]:
    """Training under each profile, stage by stage (see the module's docstring). `base`: the registry name;
    `loss_fn`: the flow-matching loss (a test passes a broken copy of it to see the rehearsal catch the mistake);
    `encode=False` skips the text and VAE stages and the sample (stand-ins of the right shapes)."""
    from isengard.models.bases import family_of_folder
    from isengard.models.fake_cuda import fake_cuda
    from isengard.plugins.training.flow_matching import flow_matching_loss
    from isengard.plugins.training.flux_lora_config import FluxLoraConfig

    family = family_of_folder(folder)
    results = []
    with fake_cuda(gpu_bytes):
        tokens = FluxLoraConfig(base=base).max_sequence_length
        if encode:
            encoded = _encode(folder, family, resolution=resolution, max_sequence_length=tokens)
        else:
            side = resolution // VAE_SCALE
            latents = torch.empty(1, LATENT_CHANNELS, side, side)
            text = _caption_embedding(folder, tokens)
            encoded = _Encoded(text=text, negative=text, latents=latents, vae=None, stages={})
        for name in profiles:
            result = RehearsalResult(base=base, profile=name, task="training", resolution=resolution)
            result.stages.update(encoded.stages)
            _train_profile(
                folder, family, encoded, result, base_name=base, rank=rank, loss_fn=loss_fn or flow_matching_loss
            )
            results.append(result)
    return results


def rehearse_generation(
    folder: Path, profiles: list[str], *, base: str, gpu_bytes: int, resolution: int = 1024
) -> list[RehearsalResult]:
    """Generation under each profile as the diffusers image plugin loads it: the placement the planner gives this
    GPU, two denoising steps and the decode."""
    from isengard.models.fake_cuda import fake_cuda
    from isengard.models.loading import free_memory, load_generation_pipeline
    from isengard.models.profiles import profile
    from isengard.plugins.image.flux_memory import choose_generation_setup

    results = []
    cuda = torch.device("cuda")
    with fake_cuda(gpu_bytes):
        for name in profiles:
            result = RehearsalResult(base=base, profile=name, task="generation", resolution=resolution)
            stages = _Stages(result)
            setup = choose_generation_setup(folder, cuda, profile(name).name)  # type: ignore[arg-type]
            with stages.stage(f"load_{setup.placement}"):
                pipe = load_generation_pipeline(
                    folder, profile=setup.profile, placement=setup.placement, dtype=torch.bfloat16, device=cuda
                )
            models = [c for c in pipe.components.values() if isinstance(c, torch.nn.Module)]
            with stages.stage("generate", *models), torch.no_grad():  # as diffusers_flux renders
                pipe(
                    prompt=CAPTION, width=resolution, height=resolution, num_inference_steps=2,
                    generator=torch.Generator(device="cpu").manual_seed(0), output_type="pt",
                )  # fmt: skip
            del pipe, models
            free_memory()
            results.append(result)
    return results
