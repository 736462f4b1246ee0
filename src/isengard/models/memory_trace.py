"""Measure one training step's activation memory without allocating it: fake tensors under torch's MemTracker.

The transformer is built on the meta device (no weights exist), the LoRA is added there, and every parameter is
then swapped for a fake tensor: shapes and dtypes without storage. One real step of the trainer (its LoRA setup
and its flow-matching loss, forward, backward, optimizer step) runs under `FakeTensorMode` inside a `MemTracker`,
which counts each storage as ops create and free it; its peak is what the step would hold. Slow (seconds for a
slice of a few blocks, minutes for the whole model), so the planner only calibrates its per-block model on it
(calibrate_step_coefficients below; the coefficients live in memory_activations.py).

Three details make the tracker usable here: the LoRA must exist before the swap (peft cannot add layers to fake
weights), MemTracker's per-module hooks are turned off (they hook every parameter for its gradient, which fails on
frozen ones, and their per-module bookkeeping is what makes a full model crawl), and attention is priced as the
fused kernels a GPU runs (output and log-sum-exp saved, no score matrix), not the CPU's score-matrix fallback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

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


def _peak_tracker() -> Any:
    from torch.distributed._tools.mem_tracker import MemTracker

    class PeakTracker(MemTracker):  # type: ignore[misc]
        """MemTracker's storage accounting and global peak, without its per-module hooks."""

        def _pre_fw_hook(self, *args: Any) -> None:
            return None

        def _post_fw_hook(self, *args: Any) -> None:
            return None

        def _pre_bw_hook(self, *args: Any) -> None:
            return None

        def _post_bw_hook(self, *args: Any) -> None:
            return None

    return PeakTracker()


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
        tracker = _peak_tracker()
        tracker.track_external(transformer, optimizer)
        with tracker:
            for _ in range(steps):
                loss = flow_matching_loss(
                    FAMILY, transformer, latents, text, noise, sigmas, guidance_scale=1.0, weight_dtype=torch.bfloat16
                )
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        current = _total(tracker.get_tracker_snapshot("current"))
        peak = _total(tracker.get_tracker_snapshot("peak"))
        parameter_bytes = sum(p.numel() * p.element_size() for p in transformer.parameters())
    return TracedStep(peak_bytes=peak, parameter_bytes=parameter_bytes, optimizer_bytes=current - parameter_bytes)


def _total(snapshot: dict[Any, dict[Any, int]]) -> int:
    return sum(int(device.get("Total", 0)) for device in snapshot.values())


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
