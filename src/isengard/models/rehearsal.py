"""The production path rehearsed at full size on a fake CUDA GPU: every stage, every memory profile, no GPU.

A full-size base folder without weights (rehearsal_model.py) is loaded and run by the project's own code under
`fake_cuda()` (fake_cuda.py): tensors have real shapes, dtypes and devices but no storage, and every operation checks
them, so a tensor left on the CPU, a dtype only bf16 on CUDA meets, or a shape only the full width has fails here
as it would on the card. Each stage is measured by a storage-byte peak counter (memory_trace.PeakCounter) on the
GPU's devices.

Training, as flux_lora_stages.load_models and flux_lora_loop run it:
1. text encoders: `text_encoder_device`, `load_text_encoders`, one caption through `encode_text`, freed;
2. VAE: `load_vae`, one image through `encode_image`, then the VAE waits in CPU memory;
3. transformer: `load_transformer` as the profile stores it, gradient checkpointing, `add_lora`,
   `attach_block_swap` for the offload profile;
4. one training step: the loss forward on the fake GPU (devices and dtypes checked), then the same step with its
   backward, gradient clipping and optimizer step on the meta device (a CPU-only build's autograd engine cannot
   run a backward on CUDA tensors, see fake_cuda.py), which is where its peak is measured;
5. one sample: two denoising steps of the sampling pipeline (with the empty caption as the negative prompt, as the
   trainer passes it) and the VAE's decode, on the fake GPU, under the last profile given (the same pipeline code
   runs under every profile; the block swap's is the intricate placement).

Generation, as the diffusers image plugin runs it: `load_generation_pipeline` with the profile's placement
(resident, or model CPU offload), two denoising steps and the decode under `no_grad`.

`rehearse_bases` runs every base's training and generation in one process per core, each distinct architecture
once. The seconds of each stage are recorded beside its peak (the rehearsal's own cost).
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
    seconds: dict[str, float] = field(default_factory=dict)  # wall time each stage took here (the rehearsal's cost)
    job_cpu_seconds: float = 0.0  # CPU time of the whole job (every profile of one base's task) in its process

    @property
    def peak_bytes(self) -> int:
        return max(self.stages.values(), default=0)

    @property
    def loop_peak_bytes(self) -> int:
        """The peak once the transformer is loaded: what the planner prices. The text and VAE stages come first and
        leave; their encoders go to the GPU only where they fit its free memory alone (text_encoder_device)."""
        return max((v for k, v in self.stages.items() if k not in ENCODING_STAGES), default=0)


class _Stages:
    """Runs stages one after another, each inside a PeakCounter; records each one's GPU peak."""

    def __init__(self, result: RehearsalResult) -> None:
        self.result = result

    @contextlib.contextmanager
    def stage(
        self, name: str, *external: Any, devices: tuple[str, ...] = ("cuda",), traced: bool = True
    ) -> Iterator[None]:
        """`devices`: what counts as GPU memory here (the meta device only where it stands in for the GPU: the
        meta skeletons models are built on before loading are no memory). `traced=False`: timed only, for a stage
        whose memory another stage measures (tracing doubles the cost of every operation)."""
        from isengard.models.memory_trace import PeakCounter

        started = time.perf_counter()
        if not traced:
            yield
            self.result.seconds[name] = time.perf_counter() - started
            return
        tracker = PeakCounter()
        if external:
            tracker.track_external(*external)
        with tracker:
            yield
        self.result.seconds[name] = time.perf_counter() - started
        self.result.stages[name] = tracker.peak_bytes(devices)


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
    seconds: dict[str, float]


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
    return _Encoded(
        text=text, negative=negative, latents=latents, vae=vae, stages=result.stages, seconds=result.seconds
    )


def _moved(text: Any, device: torch.device) -> Any:
    from isengard.plugins.training.flow_matching import TextEmbedding

    pooled = text.pooled_prompt_embeds
    return TextEmbedding(text.prompt_embeds.to(device), None if pooled is None else pooled.to(device))


def _train_profile(
    folder: Path, family: Any, encoded: _Encoded, result: RehearsalResult, *, base_name: str, rank: int,
    loss_fn: LossFn, sample: bool,
) -> None:  # fmt: skip
    """Stages 3 to 5 for one profile."""
    from isengard.models.loading import load_scheduler, load_transformer
    from isengard.models.offload import attach_block_swap, transformer_blocks
    from isengard.models.profiles import profile
    from isengard.plugins.training.flux_lora_config import FluxLoraConfig
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
    # (Its memory is the training step's first half, measured there.)
    with stages.stage("training_forward", traced=False):
        loss = loss_fn(
            family, transformer, latents.to(cuda), text, noise.to(cuda), sigmas, guidance_scale=guidance,
            weight_dtype=dtype,
        )  # fmt: skip
        del loss
    # 5. One sample on the fake GPU (before the step moves the model to the meta device): denoising and the decode.
    if sample and encoded.vae is not None:
        with stages.stage("sample", transformer):
            pipeline = sampling_pipeline(family, load_scheduler(folder), encoded.vae, transformer)
            _sample(family, pipeline, text, encoded.negative, result.resolution, cuda, guidance=config.sample_guidance)

    # ... and the whole step, backward and optimizer included, runs on the meta device.
    if swap is None:
        # Plain meta tensors, outside the fake mode: the forward's checks are done, and the step's peak is the same
        # on either kind of meta tensor at a fifth of the cost (no fake-tensor dispatch and cache keys per op).
        with _plain_meta():
            _to_plain_meta(transformer)
            meta_latents, meta_noise = _plain(latents, meta), _plain(noise, meta)
            meta_text = _plain_text(text, meta)
            _training_step(
                stages, family, transformer, config, loss_fn, meta_latents, meta_text, meta_noise,
                torch.full((1,), 0.5), guidance=guidance, dtype=dtype,
            )  # fmt: skip
        return
    # The block swap's frozen weights live in (fake) CPU memory and are copied to the (meta) GPU block by block:
    # the copies need the fake mode's CPU device, so this profile's step stays on fake meta tensors.
    transformer.to(meta)
    # `to` moved every parameter, the blocks' frozen weights too: they go back to their CPU copies, which the
    # swap's hooks bring to the (meta) GPU one block at a time, as on the card.
    swap.device = meta
    for block in transformer_blocks(transformer):
        swap.offload(block)
    _training_step(
        stages, family, transformer, config, loss_fn, latents.to(meta), _moved(text, meta), noise.to(meta), sigmas,
        guidance=guidance, dtype=dtype,
    )  # fmt: skip


def _training_step(
    stages: _Stages, family: Any, transformer: Any, config: Any, loss_fn: LossFn, latents: torch.Tensor, text: Any,
    noise: torch.Tensor, sigmas: torch.Tensor, *, guidance: float, dtype: torch.dtype,
) -> None:  # fmt: skip
    """The traced step on the meta device: loss forward, backward, clipping, optimizer step (its state made first)."""
    from isengard.plugins.training.flux_lora_loop import build_optimizer

    params = [p for p in transformer.parameters() if p.requires_grad]  # moved: new parameter objects
    optimizer = _steady_optimizer(build_optimizer(config, params), params)
    with stages.stage("training_step", transformer, optimizer, devices=GPU_DEVICE_TYPES):
        loss = loss_fn(
            family, transformer, latents, text, noise, sigmas, guidance_scale=guidance, weight_dtype=dtype,
        )  # fmt: skip
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def _plain_meta() -> Any:
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    return unset_fake_temporarily()


def _plain(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A plain tensor on `device` of `tensor`'s layout (through quantized subclasses' inner tensors); call outside
    the fake mode."""
    if type(tensor) not in (torch.Tensor, torch.nn.Parameter) and hasattr(tensor, "__tensor_flatten__"):
        names, ctx = tensor.__tensor_flatten__()
        inner = {name: _plain(getattr(tensor, name), device) for name in names}
        return type(tensor).__tensor_unflatten__(inner, ctx, tensor.shape, tensor.stride())  # type: ignore[attr-defined]
    return torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device=device)


def _plain_text(text: Any, device: torch.device) -> Any:
    from isengard.plugins.training.flow_matching import TextEmbedding

    pooled = text.pooled_prompt_embeds
    return TextEmbedding(_plain(text.prompt_embeds, device), None if pooled is None else _plain(pooled, device))


def _to_plain_meta(module: torch.nn.Module) -> None:
    """Every parameter and buffer replaced by a plain meta tensor of its layout (call outside the fake mode)."""
    meta = torch.device("meta")
    for sub in module.modules():
        for key, param in sub._parameters.items():
            if param is not None:
                sub._parameters[key] = torch.nn.Parameter(_plain(param, meta), requires_grad=param.requires_grad)
        for key, buffer in sub._buffers.items():
            if buffer is not None:
                sub._buffers[key] = _plain(buffer, meta)


def _steady_optimizer(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer as it is from the second step on, so that one traced step has the steady peak: its state made
    (one step on zero gradients, untraced), and torch's multi-tensor (`foreach`) AdamW, which torch picks on a GPU
    when every parameter is a plain CUDA tensor (fake ones are not, and would get the per-tensor loop)."""
    if isinstance(optimizer, torch.optim.AdamW):
        for group in optimizer.param_groups:
            group["foreach"] = True
    for param in params:
        param.grad = torch.zeros_like(param)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return optimizer


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
            encoded = _Encoded(text=text, negative=text, latents=latents, vae=None, stages={}, seconds={})
        for name in profiles:
            result = RehearsalResult(base=base, profile=name, task="training", resolution=resolution)
            result.stages.update(encoded.stages)
            if name == profiles[0]:  # run once for every profile: its time counted once
                result.seconds.update(encoded.seconds)
            _train_profile(
                folder, family, encoded, result, base_name=base, rank=rank, loss_fn=loss_fn or flow_matching_loss,
                sample=name == profiles[-1],
            )  # fmt: skip
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


# --- Every base, in parallel processes ----------------------------------------------------------------------------

TASKS = ("training", "generation")


def architecture_key(spec: Any) -> str:
    """What a rehearsal of `spec` depends on: its family and the configs its full-size folder is written from. Two
    bases with the same key (FLUX.1 [dev] and FLUX.1 Krea [dev]) rehearse identically; the name only labels it."""
    import json

    return json.dumps(
        [spec.family.name, spec.transformer_config, spec.text_encoder_config], sort_keys=True, default=str
    )


def rehearse_task(base: str, task: str, folder: Path, profiles: list[str], gpu_bytes: int) -> list[RehearsalResult]:
    """One base's training or generation rehearsal in a folder of its own (a worker process's whole job)."""
    from isengard.models.bases import BASES
    from isengard.models.rehearsal_model import write_full_size_folder

    started = time.process_time()
    if not (folder / "model_index.json").exists():
        write_full_size_folder(BASES[base], folder)
    rehearse = rehearse_training if task == "training" else rehearse_generation
    results = rehearse(folder, profiles, base=base, gpu_bytes=gpu_bytes)
    for result in results:
        result.job_cpu_seconds = time.process_time() - started
    return results


def rehearse_bases(
    root: Path, bases: list[str], profiles: list[str], *, gpu_bytes: int, workers: int
) -> dict[tuple[str, str], list[RehearsalResult]]:
    """Training and generation of every base under every profile: results by (base, task).

    Each distinct architecture is rehearsed once (bases that share one get its results under their own name), its
    training and generation as separate jobs in `workers` processes, largest first (the work is CPU-bound Python:
    one process per core)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from dataclasses import replace

    from isengard.models.bases import BASES

    first: dict[str, str] = {}
    for name in bases:
        first.setdefault(architecture_key(BASES[name]), name)
    size = {name: _block_count(BASES[name]) for name in first.values()}
    jobs = sorted(((name, task) for name in first.values() for task in TASKS), key=lambda job: -size[job[0]])
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no fake mode or patch leaks in or out
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(jobs))), mp_context=context) as pool:
        futures = {
            job: pool.submit(rehearse_task, job[0], job[1], root / f"{job[0]}-{job[1]}", profiles, gpu_bytes)
            for job in jobs
        }
        done = {job: future.result() for job, future in futures.items()}
    return {
        (name, task): [replace(result, base=name) for result in done[(first[architecture_key(BASES[name])], task)]]
        for name in bases
        for task in TASKS
    }


def _block_count(spec: Any) -> int:
    """The transformer's blocks: the rehearsal's work grows with them (not with their width)."""
    config = spec.transformer_config
    return int(config.get("num_layers", 0)) + int(config.get("num_single_layers", 0))
