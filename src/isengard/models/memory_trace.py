"""Measure one training step's activation memory without allocating it: fake tensors under a peak counter.

The transformer is built on the meta device (no weights exist), the LoRA is added there, and every parameter is
then swapped for a fake tensor: shapes and dtypes without storage. One real step of the trainer (its LoRA setup
and its flow-matching loss, forward, backward, optimizer step) runs under `FakeTensorMode` inside a `PeakCounter`,
which counts each storage as ops create and free it; its peak is what the step would hold. Slow (seconds for a
slice of a few blocks, minutes for the whole model), so the planner only calibrates its per-block model on it
(calibrate_step_coefficients below; the coefficients live in memory_activations.py).

Three details make the trace usable here: the LoRA must exist before the swap (peft cannot add layers to fake
weights), the counter keeps only storage bytes per device (torch's MemTracker hooks every module and parameter and
keeps per-category snapshots, which doubles the cost of each operation), and attention is priced as the
fused kernels a GPU runs (output and log-sum-exp saved, no score matrix), not the CPU's score-matrix fallback.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.utils._pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode, is_traceable_wrapper_subclass

# FLUX's VAE turns 8x8 pixels into one latent of 16 channels; two by two latents make one transformer token.
VAE_SCALE = 8
LATENT_CHANNELS = 16


@dataclass(frozen=True)
class TracedStep:
    peak_bytes: int  # everything the tracker saw at the step's peak
    parameter_bytes: int  # frozen base and LoRA weights, as stored
    optimizer_bytes: int  # optimizer state at the end of the step

    @property
    def working_bytes(self) -> int:
        """Activations, gradients and temporaries at the peak: what the step adds on top of the model."""
        return self.peak_bytes - self.parameter_bytes - self.optimizer_bytes


class _FusedAttention(torch.autograd.Function):
    """The memory behaviour of flash / memory-efficient attention: saves the inputs, the output and a log-sum-exp
    per query, never the score matrix. Values are irrelevant under fake tensors."""

    @staticmethod
    def forward(ctx: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(query)
        logsumexp = query.new_empty(query.shape[:-1], dtype=torch.float32)
        ctx.save_for_backward(query, key, value, out, logsumexp)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        query, key, value, _, _ = ctx.saved_tensors
        return torch.empty_like(query), torch.empty_like(key), torch.empty_like(value)


def _fused_sdpa(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    return _FusedAttention.apply(query, key, value)


@contextlib.contextmanager
def gpu_attention() -> Iterator[None]:
    functional = torch.nn.functional
    original = functional.scaled_dot_product_attention
    functional.scaled_dot_product_attention = _fused_sdpa  # type: ignore[assignment]
    try:
        yield
    finally:
        functional.scaled_dot_product_attention = original


# CUDA's caching allocator hands out blocks in multiples of 512 bytes (as MemTracker counts a CUDA storage).
CUDA_BLOCK = 512


class PeakCounter(TorchDispatchMode):
    """The bytes of live storages per device, and each device's peak: what a step holds at its worst.

    Every operation's outputs are looked at once; a storage not seen before is added (a CUDA one rounded up to the
    allocator's block) and a weak reference subtracts it again when it is freed. Storage objects keep their Python
    identity while the storage lives, so the reference dies exactly when the memory would be released. This is
    MemTracker's storage accounting without its module hooks and per-category snapshots, which double the cost of
    every operation and tell nothing the peak needs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.current: dict[torch.device, int] = {}
        self.peak: dict[torch.device, int] = {}
        self._live: dict[int, tuple[weakref.ref[Any], torch.device, int]] = {}

    def track_external(self, *objects: Any) -> None:
        """Count what exists before the counter starts: modules' parameters, buffers and gradients, optimizers'
        state, plain tensors."""
        for obj in objects:
            if isinstance(obj, torch.nn.Module):
                for param in obj.parameters():
                    self._add(param)
                    if param.grad is not None:
                        self._add(param.grad)
                for buffer in obj.buffers():
                    self._add(buffer)
            elif isinstance(obj, torch.optim.Optimizer):
                for state in obj.state.values():
                    for value in state.values():
                        if isinstance(value, torch.Tensor):
                            self._add(value)
            elif isinstance(obj, torch.Tensor):
                self._add(obj)
        self.peak = dict(self.current)

    def peak_bytes(self, device_types: tuple[str, ...]) -> int:
        return sum(value for device, value in self.peak.items() if device.type in device_types)

    def _add(self, tensor: torch.Tensor) -> None:
        if type(tensor) not in (torch.Tensor, torch.nn.Parameter) and is_traceable_wrapper_subclass(tensor):
            names, _ctx = tensor.__tensor_flatten__()
            for name in names:
                inner = getattr(tensor, name)
                if isinstance(inner, torch.Tensor):
                    self._add(inner)
            return
        storage = tensor.untyped_storage()
        key = id(storage)
        nbytes = storage.nbytes()
        device = tensor.device
        if device.type == "cuda":
            nbytes = -(-nbytes // CUDA_BLOCK) * CUDA_BLOCK
        known = self._live.get(key)
        if known is not None:
            if known[2] == nbytes:
                return
            self.current[device] += nbytes - known[2]  # resized in place
            self._live[key] = (known[0], device, nbytes)
            return
        self._live[key] = (weakref.ref(storage, partial(self._freed, key)), device, nbytes)
        self.current[device] = self.current.get(device, 0) + nbytes

    def _freed(self, key: int, _ref: Any) -> None:
        known = self._live.pop(key, None)
        if known is not None:
            self.current[known[1]] -= known[2]

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for value in pytree.tree_leaves(out):
            if isinstance(value, torch.Tensor):
                self._add(value)
        peak = self.peak
        for device, value in self.current.items():
            if value > peak.get(device, 0):
                peak[device] = value
        return out


def _swap_in_fakes(module: torch.nn.Module) -> None:
    """Replace each meta parameter by a fake one of the same shape and dtype (call inside FakeTensorMode)."""
    for sub in module.modules():
        for name, param in list(sub._parameters.items()):
            if param is None:
                continue
            fake = torch.empty(param.shape, dtype=param.dtype, device="cpu")
            sub._parameters[name] = torch.nn.Parameter(fake, requires_grad=param.requires_grad)


def trace_training_step(
    transformer_config: dict[str, Any],
    *,
    resolution: int,
    batch_size: int,
    rank: int,
    gradient_checkpointing: bool,
    text_tokens: int = 512,
    steps: int = 2,
) -> TracedStep:
    """Peak memory of the trainer's step on this transformer config (bf16 base, fp32 LoRA and AdamW state).

    Two steps by default: the optimizer state exists from the first step's end, so the second step's peak is the
    steady one.
    """
    from diffusers import FluxTransformer2DModel
    from torch._subclasses.fake_tensor import FakeTensorMode

    from isengard.models.bases.flux1 import FAMILY
    from isengard.plugins.training.flow_matching import TextEmbedding, flow_matching_loss
    from isengard.plugins.training.flux_lora_config import FluxLoraConfig
    from isengard.plugins.training.flux_lora_stages import add_lora

    with torch.device("meta"):
        transformer: Any = FluxTransformer2DModel(**transformer_config)
    transformer.to(torch.bfloat16)
    if gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    add_lora(transformer, FluxLoraConfig(rank=rank, alpha=float(rank)))
    transformer.train()
    joint = int(transformer_config.get("joint_attention_dim", 4096))
    pooled = int(transformer_config.get("pooled_projection_dim", 768))
    side = resolution // VAE_SCALE

    with FakeTensorMode(), gpu_attention():
        _swap_in_fakes(transformer)
        params = [p for p in transformer.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4)
        latents = torch.empty(batch_size, LATENT_CHANNELS, side, side)
        noise = torch.empty(batch_size, LATENT_CHANNELS, side, side)
        text = TextEmbedding(torch.empty(batch_size, text_tokens, joint), torch.empty(batch_size, pooled))
        sigmas = torch.full((batch_size,), 0.5)
        tracker = PeakCounter()
        tracker.track_external(transformer, optimizer)
        with tracker:
            for _ in range(steps):
                loss = flow_matching_loss(
                    FAMILY, transformer, latents, text, noise, sigmas, guidance_scale=1.0, weight_dtype=torch.bfloat16
                )
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        current = sum(tracker.current.values())
        peak = sum(tracker.peak.values())
        parameter_bytes = sum(p.numel() * p.element_size() for p in transformer.parameters())
    return TracedStep(peak_bytes=peak, parameter_bytes=parameter_bytes, optimizer_bytes=current - parameter_bytes)


def calibrate_step_coefficients(
    transformer_config: dict[str, Any],
    *,
    gradient_checkpointing: bool,
    resolution: int = 512,
    rank: int = 16,
    text_tokens: int = 512,
) -> Any:
    """The per-block model's coefficients for a transformer's width, from traces of four slices of it.

    Slices of two and three double blocks (no single ones), and of two and three single blocks: the difference is
    what one more block holds until its backward; the rest is what the peak adds around the blocks. (A slice of one
    block is no guide: its only block is both the first and the last, whose backward overlaps the loss's.)
    """
    from isengard.models.bases.flux1 import flux_layout
    from isengard.models.memory_activations import StepCoefficients, image_tokens

    def working(num_double: int, num_single: int) -> float:
        config = {**transformer_config, "num_layers": num_double, "num_single_layers": num_single}
        traced = trace_training_step(
            config, resolution=resolution, batch_size=1, rank=rank,
            gradient_checkpointing=gradient_checkpointing, text_tokens=text_tokens,
        )  # fmt: skip
        return float(traced.working_bytes)

    layout = flux_layout(transformer_config, text_tokens=text_tokens)
    unit = (image_tokens(resolution) + text_tokens) * layout.hidden
    two_double, three_double = working(2, 0), working(3, 0)
    two_single, three_single = working(0, 2), working(0, 3)
    double = (three_double - two_double) / unit
    single = (three_single - two_single) / unit
    return StepCoefficients(
        double=double,
        single=single,
        double_peak=two_double / unit - 2 * double,
        single_peak=two_single / unit - 2 * single,
    )
