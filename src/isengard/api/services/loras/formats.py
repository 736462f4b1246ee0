"""FLUX LoRA key layouts and their conversion to the one Isengard stores (diffusers: `transformer.<module>.lora_A`).

Recognised layouts:
- `diffusers`: `transformer.<module>.lora_A.weight` / `.lora_B.weight`, optional `<module>.alpha`.
- `ai-toolkit`: diffusers module names under `transformer.` or `diffusion_model.`, with `lora_A`/`lora_B` or
  `lora_down`/`lora_up` (+ `alpha`) — the variants ai-toolkit has written over its versions.
- `kohya` (sd-scripts): `lora_unet_<BFL module with underscores>.lora_down.weight` / `.lora_up.weight` / `.alpha`,
  on the original BFL modules where q, k, v (and the single blocks' MLP input) are one fused linear; fused LoRAs
  are split into one LoRA per diffusers module (the down matrix is shared, the up matrix is cut by rows).

Anything else is refused with the reason, never loaded half-understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import torch

PREFIX = "transformer."
MLP_RATIO = 4  # FLUX's MLP width is 4x the attention width, in double and single blocks alike


class LoraFormatError(ValueError):
    """The file is not a FLUX LoRA Isengard can use; the message says why."""


@dataclass
class ConvertedLora:
    state: dict[str, torch.Tensor]  # diffusers layout, ready for `save_file`
    layout: str
    rank: int
    alpha: float | None
    modules: int
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Module:
    down: torch.Tensor | None = None
    up: torch.Tensor | None = None
    alpha: torch.Tensor | None = None


# --- The shapes of FLUX's linear layers, from the transformer config --------------------------------------------


def expected_shapes(config: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(out_features, in_features) of every linear layer a LoRA may target, for a FluxTransformer2DModel config."""
    inner = int(config.get("num_attention_heads", 24)) * int(config.get("attention_head_dim", 128))
    mlp = inner * MLP_RATIO
    in_channels = int(config.get("in_channels", 64))
    out_channels = int(config.get("out_channels") or in_channels)
    patch = int(config.get("patch_size", 1))
    shapes: dict[str, tuple[int, int]] = {
        "x_embedder": (inner, in_channels),
        "context_embedder": (inner, int(config.get("joint_attention_dim", 4096))),
        "time_text_embed.timestep_embedder.linear_1": (inner, 256),
        "time_text_embed.timestep_embedder.linear_2": (inner, inner),
        "time_text_embed.text_embedder.linear_1": (inner, int(config.get("pooled_projection_dim", 768))),
        "time_text_embed.text_embedder.linear_2": (inner, inner),
        "norm_out.linear": (2 * inner, inner),
        "proj_out": (patch * patch * out_channels, inner),
    }
    if config.get("guidance_embeds", True):
        shapes["time_text_embed.guidance_embedder.linear_1"] = (inner, 256)
        shapes["time_text_embed.guidance_embedder.linear_2"] = (inner, inner)
    for i in range(int(config.get("num_layers", 19))):
        block = f"transformer_blocks.{i}"
        for name in ("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "attn.add_q_proj", "attn.add_k_proj",
                     "attn.add_v_proj", "attn.to_add_out"):  # fmt: skip
            shapes[f"{block}.{name}"] = (inner, inner)
        for ff in ("ff", "ff_context"):
            shapes[f"{block}.{ff}.net.0.proj"] = (mlp, inner)
            shapes[f"{block}.{ff}.net.2"] = (inner, mlp)
        shapes[f"{block}.norm1.linear"] = (6 * inner, inner)
        shapes[f"{block}.norm1_context.linear"] = (6 * inner, inner)
    for i in range(int(config.get("num_single_layers", 38))):
        block = f"single_transformer_blocks.{i}"
        for name in ("attn.to_q", "attn.to_k", "attn.to_v"):
            shapes[f"{block}.{name}"] = (inner, inner)
        shapes[f"{block}.proj_mlp"] = (mlp, inner)
        shapes[f"{block}.proj_out"] = (inner, inner + mlp)
        shapes[f"{block}.norm.linear"] = (3 * inner, inner)
    return shapes


# --- kohya (sd-scripts) names: BFL modules with underscores --------------------------------------------------------

_KOHYA_DOUBLE = {
    "img_attn_qkv": ["attn.to_q", "attn.to_k", "attn.to_v"],
    "img_attn_proj": ["attn.to_out.0"],
    "img_mlp_0": ["ff.net.0.proj"],
    "img_mlp_2": ["ff.net.2"],
    "img_mod_lin": ["norm1.linear"],
    "txt_attn_qkv": ["attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"],
    "txt_attn_proj": ["attn.to_add_out"],
    "txt_mlp_0": ["ff_context.net.0.proj"],
    "txt_mlp_2": ["ff_context.net.2"],
    "txt_mod_lin": ["norm1_context.linear"],
}
_KOHYA_SINGLE = {
    "linear1": ["attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"],
    "linear2": ["proj_out"],
    "modulation_lin": ["norm.linear"],
}
_KOHYA_GLOBAL = {
    "img_in": "x_embedder",
    "txt_in": "context_embedder",
    "time_in_in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_in_out_layer": "time_text_embed.timestep_embedder.linear_2",
    "vector_in_in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in_out_layer": "time_text_embed.text_embedder.linear_2",
    "guidance_in_in_layer": "time_text_embed.guidance_embedder.linear_1",
    "guidance_in_out_layer": "time_text_embed.guidance_embedder.linear_2",
    "final_layer_linear": "proj_out",
    "final_layer_adaLN_modulation_1": "norm_out.linear",
}
_KOHYA_BLOCK = re.compile(r"^(double|single)_blocks_(\d+)_(.+)$")


def kohya_targets(name: str) -> list[str]:
    """Diffusers module names for one kohya module name (without `lora_unet_`); several when it is fused."""
    if name in _KOHYA_GLOBAL:
        return [_KOHYA_GLOBAL[name]]
    match = _KOHYA_BLOCK.match(name)
    if match:
        kind, index, rest = match.groups()
        table = _KOHYA_DOUBLE if kind == "double" else _KOHYA_SINGLE
        block = "transformer_blocks" if kind == "double" else "single_transformer_blocks"
        if rest in table:
            return [f"{block}.{index}.{target}" for target in table[rest]]
    raise LoraFormatError(f"unknown kohya module '{name}': not a FLUX transformer layer")


def _split_rows(up: torch.Tensor, targets: list[str]) -> list[torch.Tensor]:
    """Cut a fused up matrix into per-module parts: qkv thirds, or q|k|v|mlp sevenths-with-mlp for single blocks."""
    rows = up.shape[0]
    if len(targets) == 3:
        if rows % 3:
            raise LoraFormatError(f"fused qkv LoRA has {rows} rows, not a multiple of 3")
        return list(torch.split(up, rows // 3, dim=0))
    if len(targets) == 4:
        unit, rest = divmod(rows, 3 + MLP_RATIO)
        if rest:
            raise LoraFormatError(f"fused single-block LoRA has {rows} rows, not 3 attention parts plus an MLP")
        return list(torch.split(up, [unit, unit, unit, unit * MLP_RATIO], dim=0))
    return [up]


# --- Detection and conversion ---------------------------------------------------------------------------------------

_TEXT_ENCODER_PREFIXES = ("lora_te", "text_encoder", "te_", "lora_te1_", "lora_te2_")
_SUFFIXES = {
    ".lora_A.weight": "down",
    ".lora_B.weight": "up",
    ".lora_down.weight": "down",
    ".lora_up.weight": "up",
    ".alpha": "alpha",
}


def detect_layout(keys: list[str]) -> str:
    transformer_keys = [k for k in keys if not k.startswith(_TEXT_ENCODER_PREFIXES)]
    if not transformer_keys:
        raise LoraFormatError("the file holds no transformer LoRA weights (text encoder only, or empty)")
    if any(k.startswith(("lora_unet_down_blocks", "lora_unet_up_blocks", "lora_unet_mid_block")) for k in keys):
        raise LoraFormatError("this is a Stable Diffusion (UNet) LoRA, not a FLUX one")
    if all(k.startswith("lora_unet_") for k in transformer_keys):
        return "kohya"
    if all(k.startswith(PREFIX) for k in transformer_keys) and all(
        k.endswith((".lora_A.weight", ".lora_B.weight", ".alpha")) for k in transformer_keys
    ):
        return "diffusers"
    if all(k.startswith((PREFIX, "diffusion_model.")) for k in transformer_keys):
        return "ai-toolkit"
    sample = next(k for k in transformer_keys if not k.startswith(("lora_unet_", PREFIX, "diffusion_model.")))
    raise LoraFormatError(f"unknown LoRA key layout (e.g. '{sample}'): expected diffusers, ai-toolkit or kohya keys")


def _split_key(key: str) -> tuple[str, str]:
    for suffix, role in _SUFFIXES.items():
        if key.endswith(suffix):
            return key[: -len(suffix)], role
    raise LoraFormatError(f"unknown tensor '{key}': not a LoRA down/up/alpha weight")


def _group(state: dict[str, torch.Tensor], layout: str) -> dict[str, _Module]:
    modules: dict[str, _Module] = {}
    for key, tensor in state.items():
        if key.startswith(_TEXT_ENCODER_PREFIXES):
            continue
        name, role = _split_key(key)
        if layout == "kohya":
            name = name.removeprefix("lora_unet_")
        else:
            name = name.removeprefix(PREFIX).removeprefix("diffusion_model.")
        setattr(modules.setdefault(name, _Module()), role, tensor)
    return modules


def convert_to_diffusers(state: dict[str, torch.Tensor], shapes: dict[str, tuple[int, int]] | None) -> ConvertedLora:
    """Convert a LoRA state dict to Isengard's layout; check modules (and shapes, given the base model's)."""
    layout = detect_layout(list(state))
    warnings = []
    dropped = [k for k in state if k.startswith(_TEXT_ENCODER_PREFIXES)]
    if dropped:
        warnings.append(f"{len(dropped)} text-encoder tensors were ignored: Isengard applies LoRAs to the transformer")
    out: dict[str, torch.Tensor] = {}
    ranks: set[int] = set()
    alphas: set[float] = set()
    for name, module in sorted(_group(state, layout).items()):
        if module.down is None or module.up is None:
            raise LoraFormatError(f"module '{name}' lacks its {'down (A)' if module.down is None else 'up (B)'} matrix")
        if module.down.ndim != 2 or module.up.ndim != 2 or module.up.shape[1] != module.down.shape[0]:
            raise LoraFormatError(
                f"module '{name}': down {tuple(module.down.shape)} and up {tuple(module.up.shape)} do not fit"
            )
        rank = int(module.down.shape[0])
        alpha = float(module.alpha.item()) if module.alpha is not None else None
        targets = kohya_targets(name) if layout == "kohya" else [name]
        ups = _split_rows(module.up, targets)
        if layout == "kohya" and name == "final_layer_adaLN_modulation_1":
            # BFL orders the final modulation as (shift, scale); diffusers' norm_out as (scale, shift).
            shift, scale = ups[0].chunk(2, dim=0)
            ups = [torch.cat([scale, shift], dim=0)]
        for target, up in zip(targets, ups, strict=True):
            if shapes is not None:
                if target not in shapes:
                    raise LoraFormatError(f"module '{target}' does not exist in this base model")
                want_out, want_in = shapes[target]
                if (up.shape[0], module.down.shape[1]) != (want_out, want_in):
                    raise LoraFormatError(
                        f"module '{target}' is {up.shape[0]}x{module.down.shape[1]} in the LoRA but "
                        f"{want_out}x{want_in} in the base model: the LoRA was made for another model"
                    )
            out[f"{PREFIX}{target}.lora_A.weight"] = module.down.contiguous().clone()
            out[f"{PREFIX}{target}.lora_B.weight"] = up.contiguous().clone()
            if alpha is not None and alpha != rank:
                out[f"{PREFIX}{target}.alpha"] = torch.tensor(alpha)
        ranks.add(rank)
        if alpha is not None:
            alphas.add(alpha)
    modules = sum(1 for key in out if key.endswith(".lora_A.weight"))
    return ConvertedLora(
        state=out,
        layout=layout,
        rank=max(ranks),
        alpha=alphas.pop() if len(alphas) == 1 else None,
        modules=modules,
        warnings=warnings,
    )
