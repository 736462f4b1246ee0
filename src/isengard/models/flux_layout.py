"""The shapes a transformer's weights have, worked out from its config without building it: the types every base
family's layout (models/bases/) is described in.

The memory planner needs every weight's shape to price it in a storage format (bf16, int8, NF4): which tensors are
`nn.Linear` weights (quantized) and which are biases, norms and embeddings (kept in bf16). Pure arithmetic, so the
planner answers in microseconds and the API never imports torch for it; tests check these shapes against the
modules diffusers and transformers actually build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Location = Literal["outer", "double", "single"]


@dataclass(frozen=True)
class Linear:
    """One `nn.Linear` (times `count` identical ones in the same place)."""

    name: str
    in_features: int
    out_features: int
    bias: bool = True
    count: int = 1

    @property
    def weight_numel(self) -> int:
        return self.in_features * self.out_features * self.count

    @property
    def bias_numel(self) -> int:
        return self.out_features * self.count if self.bias else 0


@dataclass(frozen=True)
class Layout:
    """Linears and other parameters of one place: outside the blocks, one double block, or one single block."""

    location: Location
    linears: tuple[Linear, ...]
    other_numel: int  # norms and anything that is not a Linear weight or bias: never quantized

    @property
    def numel(self) -> int:
        return sum(linear.weight_numel + linear.bias_numel for linear in self.linears) + self.other_numel


@dataclass(frozen=True)
class FluxLayout:
    outer: Layout
    double: Layout
    single: Layout
    num_double: int
    num_single: int
    hidden: int
    text_tokens: int  # text tokens per caption the transformer attends to

    @property
    def numel(self) -> int:
        return self.outer.numel + self.num_double * self.double.numel + self.num_single * self.single.numel

    def blocks(self) -> list[tuple[Layout, int]]:
        return [(self.double, self.num_double), (self.single, self.num_single)]


def linear_shapes(layout: FluxLayout) -> dict[str, tuple[int, int]]:
    """(out_features, in_features) of every linear layer by its module name in the transformer (what a LoRA file's
    keys name): the outer ones as they are, block ones under `transformer_blocks.{i}.` and
    `single_transformer_blocks.{i}.`."""
    shapes = {linear.name: (linear.out_features, linear.in_features) for linear in layout.outer.linears}
    for prefix, block, count in (
        ("transformer_blocks", layout.double, layout.num_double),
        ("single_transformer_blocks", layout.single, layout.num_single),
    ):
        for index in range(count):
            for linear in block.linears:
                shapes[f"{prefix}.{index}.{linear.name}"] = (linear.out_features, linear.in_features)
    return shapes
