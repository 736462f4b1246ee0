"""The parameters of a FLUX transformer and a T5 encoder, worked out from their configs without building them.

The memory planner needs every weight's shape to price it in a storage format (bf16, int8, NF4): which tensors are
`nn.Linear` weights (quantized) and which are biases, norms and embeddings (kept in bf16). Pure arithmetic, so the
planner answers in microseconds and the API never imports torch for it; tests check these shapes against the
modules diffusers and transformers actually build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Location = Literal["outer", "double", "single"]

# The attention and feed-forward projections of FLUX's double- and single-stream blocks, as diffusers names them.
DEFAULT_TARGET_MODULES = [
    "attn.to_k",
    "attn.to_q",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_k_proj",
    "attn.add_q_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
]

# diffusers' FLUX blocks widen the feed-forward by this fixed ratio (not part of the config).
FLUX_MLP_RATIO = 4
# The timestep and guidance embeddings start from this many sinusoidal channels.
FLUX_TIME_CHANNELS = 256


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
    text_tokens: int  # T5 tokens per caption the transformer attends to

    @property
    def numel(self) -> int:
        return self.outer.numel + self.num_double * self.double.numel + self.num_single * self.single.numel

    def blocks(self) -> list[tuple[Layout, int]]:
        return [(self.double, self.num_double), (self.single, self.num_single)]


def flux_layout(config: dict[str, Any], *, text_tokens: int = 512) -> FluxLayout:
    """Shapes of diffusers' `FluxTransformer2DModel` for a config (its `config.json` keys, defaults as diffusers')."""
    heads = int(config.get("num_attention_heads", 24))
    head_dim = int(config.get("attention_head_dim", 128))
    dim = heads * head_dim
    patch = int(config.get("patch_size", 1))
    in_channels = int(config.get("in_channels", 64))
    out_channels = int(config.get("out_channels") or in_channels)
    joint = int(config.get("joint_attention_dim", 4096))
    pooled = int(config.get("pooled_projection_dim", 768))
    guidance = bool(config.get("guidance_embeds", False))
    mlp = dim * FLUX_MLP_RATIO

    def embedder(name: str, inputs: int) -> list[Linear]:
        return [Linear(f"{name}.linear_1", inputs, dim), Linear(f"{name}.linear_2", dim, dim)]

    outer = [
        Linear("x_embedder", in_channels, dim),
        Linear("context_embedder", joint, dim),
        *embedder("time_text_embed.timestep_embedder", FLUX_TIME_CHANNELS),
        *(embedder("time_text_embed.guidance_embedder", FLUX_TIME_CHANNELS) if guidance else []),
        *embedder("time_text_embed.text_embedder", pooled),
        Linear("norm_out.linear", dim, 2 * dim),
        Linear("proj_out", dim, patch * patch * out_channels),
    ]
    double = [
        Linear("norm1.linear", dim, 6 * dim),
        Linear("norm1_context.linear", dim, 6 * dim),
        Linear("attn.to_q", dim, dim),
        Linear("attn.to_k", dim, dim),
        Linear("attn.to_v", dim, dim),
        Linear("attn.to_out.0", dim, dim),
        Linear("attn.add_q_proj", dim, dim),
        Linear("attn.add_k_proj", dim, dim),
        Linear("attn.add_v_proj", dim, dim),
        Linear("attn.to_add_out", dim, dim),
        Linear("ff.net.0.proj", dim, mlp),
        Linear("ff.net.2", mlp, dim),
        Linear("ff_context.net.0.proj", dim, mlp),
        Linear("ff_context.net.2", mlp, dim),
    ]
    single = [
        Linear("norm.linear", dim, 3 * dim),
        Linear("proj_mlp", dim, mlp),
        Linear("attn.to_q", dim, dim),
        Linear("attn.to_k", dim, dim),
        Linear("attn.to_v", dim, dim),
        Linear("proj_out", dim + mlp, dim),
    ]
    return FluxLayout(
        outer=Layout("outer", tuple(outer), 0),
        # RMS norms of queries and keys (two per stream) carry a weight of the head's width.
        double=Layout("double", tuple(double), 4 * head_dim),
        single=Layout("single", tuple(single), 2 * head_dim),
        num_double=int(config.get("num_layers", 19)),
        num_single=int(config.get("num_single_layers", 38)),
        hidden=dim,
        text_tokens=text_tokens,
    )


def t5_encoder_layout(config: dict[str, Any]) -> Layout:
    """Shapes of transformers' `T5EncoderModel` (gated-GELU feed-forward, as T5 v1.1 and T5-XXL use)."""
    d_model = int(config.get("d_model", 4096))
    d_kv = int(config.get("d_kv", 64))
    heads = int(config.get("num_heads", 64))
    d_ff = int(config.get("d_ff", 10240))
    layers = int(config.get("num_layers", 24))
    vocab = int(config.get("vocab_size", 32128))
    buckets = int(config.get("relative_attention_num_buckets", 32))
    gated = str(config.get("feed_forward_proj", "gated-gelu")).startswith("gated")
    inner = d_kv * heads
    linears = [
        Linear("SelfAttention.q", d_model, inner, bias=False, count=layers),
        Linear("SelfAttention.k", d_model, inner, bias=False, count=layers),
        Linear("SelfAttention.v", d_model, inner, bias=False, count=layers),
        Linear("SelfAttention.o", inner, d_model, bias=False, count=layers),
        Linear("DenseReluDense.wi", d_model, d_ff, bias=False, count=layers * (2 if gated else 1)),
        Linear("DenseReluDense.wo", d_ff, d_model, bias=False, count=layers),
    ]
    # The shared token embedding, the first layer's relative position bias, two layer norms a layer and a final one.
    other = vocab * d_model + buckets * heads + (2 * layers + 1) * d_model
    return Layout("outer", tuple(linears), other)


# Published configs of FLUX.1-dev's transformer and its T5-XXL text encoder (the parts the planner reads).
FLUX_DEV_TRANSFORMER: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 64,
    "out_channels": None,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": True,
    "axes_dims_rope": [16, 56, 56],
}

T5_XXL_ENCODER: dict[str, Any] = {
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_heads": 64,
    "num_layers": 24,
    "vocab_size": 32128,
    "relative_attention_num_buckets": 32,
    "feed_forward_proj": "gated-gelu",
}

# CLIP-L's text model and the VAE are small next to these; their parameter counts as published.
CLIP_L_PARAMS = 123_060_480
FLUX_VAE_PARAMS = 83_819_683
