"""The memory a step works with on top of the weights: activations, gradients and temporaries, per block.

A per-block model calibrated on fake-tensor runs of the trainer's real step (memory_trace.py). Every term scales
with batch x tokens x hidden width: with fused attention (what a GPU runs) nothing in a FLUX block grows faster than
the sequence, which the traces confirm (the same coefficient at 512 and 1024 px within 1%). So a few traces of small
slices of the full-width model price any resolution, batch and depth by arithmetic, in microseconds.

Where the peak falls: without checkpointing, at the end of the forward pass, when every block's activations are
held. With checkpointing, each block keeps only its input, and the backward pass runs blocks again one at a time:
the peak is either at the first single block's backward (every block's input still held, plus one single block's
working set) or in a double block's backward (the double blocks' inputs, plus a double block's larger working set).
"""

from __future__ import annotations

from dataclasses import dataclass

from isengard.models.flux_layout import FluxLayout

# FLUX packs 2x2 latents of an 8x VAE into one token: one token per 16x16 pixels.
PIXELS_PER_TOKEN_SIDE = 16


@dataclass(frozen=True)
class StepCoefficients:
    """Bytes per (sample x token x hidden unit) of a training step's working memory (the LoRA gradients that exist
    at the peak included).

    `double` / `single`: what each block holds until its backward; `double_peak` / `single_peak`: everything
    outside the blocks plus the working set of one block while its backward runs (without checkpointing, nothing
    runs again, so both equal the outside part)."""

    double: float
    single: float
    double_peak: float
    single_peak: float


# Calibrated with memory_trace.calibrate_step_coefficients on FLUX.1-dev's width (hidden 3072, 24 heads of 128),
# bf16 base, LoRA rank 16 on the default targets, batch 1, at 512 and 1024 px: the values agree within 0.1% except
# the double-block peaks (the larger is kept). With checkpointing a block holds only its bf16 input (2 bytes); the
# whole FLUX.1-dev traced the same way (19 + 38 blocks, ~2 minutes) peaks at 811.9 MiB (512 px) and 2435.8 MiB
# (1024 px) of working memory, which these coefficients reproduce to 0.1%.
CHECKPOINTED = StepCoefficients(double=2.0, single=2.0, double_peak=81.0, single_peak=66.43)
NOT_CHECKPOINTED = StepCoefficients(double=64.24, single=38.16, double_peak=15.25, single_peak=18.27)

# Denoising without gradients holds only one block's working set: a few sequence-wide tensors and the feed-forward
# expansion (4x the width) in bf16, about 12 bytes per token and hidden unit; the traces of a frozen forward agree.
INFERENCE_BYTES_PER_TOKEN_HIDDEN = 12.0


def image_tokens(resolution: int) -> int:
    side = resolution // PIXELS_PER_TOKEN_SIDE
    return side * side


def step_working_bytes(layout: FluxLayout, *, resolution: int, batch_size: int, gradient_checkpointing: bool) -> int:
    """Activations, gradients and temporaries of one training step at the step's peak (weights excluded)."""
    c = CHECKPOINTED if gradient_checkpointing else NOT_CHECKPOINTED
    unit = batch_size * (image_tokens(resolution) + layout.text_tokens) * layout.hidden
    held = layout.num_double * c.double
    at_single = held + layout.num_single * c.single + c.single_peak if layout.num_single else 0.0
    at_double = held + c.double_peak if layout.num_double else 0.0
    return int(unit * max(at_single, at_double))


def inference_working_bytes(layout: FluxLayout, *, resolution: int, batch_size: int) -> int:
    unit = batch_size * (image_tokens(resolution) + layout.text_tokens) * layout.hidden
    return int(unit * INFERENCE_BYTES_PER_TOKEN_HIDDEN)
