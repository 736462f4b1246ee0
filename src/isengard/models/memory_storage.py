"""What FLUX's weights occupy in each storage format of the memory profiles: bf16, torchao int8 and torchao NF4.

Exact byte counts from the layouts in flux_layout.py and the formats' storage (checked in tests against the bytes
torchao's quantized tensors really hold). Only `nn.Linear` weights are quantized; biases, norms and embeddings stay
in bf16, like a weight whose size NF4 cannot block.
"""

from __future__ import annotations

from isengard.models.flux_layout import FluxLayout, Layout, Linear
from isengard.models.profiles import WeightFormat

BF16 = 2
FP32 = 4
# torchao Int8Tensor (weight-only): one int8 per weight, and per output row an fp32 scale and an int8 zero point.
INT8_ROW_BYTES = FP32 + 1
# torchao NF4Tensor: two 4-bit codes per byte; per 64-weight block an int8 scale; per 256 such scales a bf16 factor;
# plus a bf16 mean of the scales and the 16-entry bf16 code table per tensor. A weight whose size is not a multiple
# of 64 x 256 is left unquantized (the loader skips it, see models/loading.py).
NF4_BLOCK = 64
NF4_SCALER_BLOCK = 256
NF4_TENSOR_BYTES = BF16 + 16 * BF16


def nf4_blockable(linear: Linear) -> bool:
    return (linear.in_features * linear.out_features) % (NF4_BLOCK * NF4_SCALER_BLOCK) == 0


def linear_weight_bytes(linear: Linear, weight_format: WeightFormat) -> int:
    """Bytes of the weights (not biases) of `linear.count` identical layers stored in `weight_format`."""
    numel = linear.in_features * linear.out_features
    if weight_format == "int8":
        one = numel + INT8_ROW_BYTES * linear.out_features
    elif weight_format == "nf4" and nf4_blockable(linear):
        blocks = numel // NF4_BLOCK
        one = numel // 2 + blocks + BF16 * (blocks // NF4_SCALER_BLOCK) + NF4_TENSOR_BYTES
    else:
        one = BF16 * numel
    return one * linear.count


def layout_bytes(layout: Layout, weight_format: WeightFormat) -> int:
    """Bytes of every parameter of a layout: quantized Linear weights, bf16 biases and other parameters."""
    weights = sum(linear_weight_bytes(linear, weight_format) for linear in layout.linears)
    rest = sum(linear.bias_numel for linear in layout.linears) + layout.other_numel
    return weights + BF16 * rest


def transformer_bytes(layout: FluxLayout, weight_format: WeightFormat) -> tuple[int, list[tuple[int, int]]]:
    """Bytes outside the blocks, and (bytes of one block, count) for the double and the single blocks."""
    blocks = [(layout_bytes(block, weight_format), n) for block, n in layout.blocks()]
    return layout_bytes(layout.outer, weight_format), blocks


def largest_linear_bf16_bytes(layout: Layout) -> int:
    return max(BF16 * linear.in_features * linear.out_features for linear in layout.linears)


def lora_numel(layout: Layout, rank: int, target_modules: list[str]) -> int:
    """LoRA parameters peft adds to a layout: A (rank x in) and B (out x rank) on each targeted Linear.

    peft matches a target against the end of a module's dotted name, as here."""
    total = 0
    for linear in layout.linears:
        if any(linear.name == target or linear.name.endswith("." + target) for target in target_modules):
            total += rank * (linear.in_features + linear.out_features) * linear.count
    return total
