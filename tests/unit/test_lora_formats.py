"""LoRA key layouts: detection, conversion to the diffusers layout (checked against a real fused pipeline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from isengard.api.services.loras.formats import (
    LoraFormatError,
    convert_to_diffusers,
    detect_layout,
    expected_shapes,
    kohya_targets,
)
from isengard.models.tiny import build_tiny_pipeline, save_tiny_model

TINY_CONFIG = {
    "num_layers": 2,
    "num_single_layers": 2,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 32,
    "pooled_projection_dim": 32,
    "in_channels": 64,
    "guidance_embeds": True,
}
D = 32  # the tiny model's attention width


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-flux")


def test_expected_shapes_match_the_tiny_transformer() -> None:
    transformer = build_tiny_pipeline().transformer
    real = {
        name: tuple(module.weight.shape)
        for name, module in transformer.named_modules()
        if isinstance(module, torch.nn.Linear)
    }
    config = json.loads(json.dumps(dict(transformer.config)))
    assert expected_shapes(config) == real


def test_kohya_names_map_onto_real_flux_modules() -> None:
    assert kohya_targets("double_blocks_18_img_attn_qkv") == [
        "transformer_blocks.18.attn.to_q",
        "transformer_blocks.18.attn.to_k",
        "transformer_blocks.18.attn.to_v",
    ]
    assert kohya_targets("double_blocks_0_txt_attn_proj") == ["transformer_blocks.0.attn.to_add_out"]
    assert kohya_targets("double_blocks_3_txt_mlp_2") == ["transformer_blocks.3.ff_context.net.2"]
    assert kohya_targets("double_blocks_3_img_mod_lin") == ["transformer_blocks.3.norm1.linear"]
    assert kohya_targets("single_blocks_37_linear1") == [
        "single_transformer_blocks.37.attn.to_q",
        "single_transformer_blocks.37.attn.to_k",
        "single_transformer_blocks.37.attn.to_v",
        "single_transformer_blocks.37.proj_mlp",
    ]
    assert kohya_targets("single_blocks_37_linear2") == ["single_transformer_blocks.37.proj_out"]
    assert kohya_targets("final_layer_adaLN_modulation_1") == ["norm_out.linear"]
    assert kohya_targets("guidance_in_out_layer") == ["time_text_embed.guidance_embedder.linear_2"]
    with pytest.raises(LoraFormatError, match="unknown kohya module"):
        kohya_targets("double_blocks_0_img_attn_norm_query_norm")
    # Every target of the full FLUX.1-dev layout exists in its shape table.
    flux = expected_shapes({})
    for i in (0, 18):
        for rest in ("img_attn_qkv", "img_attn_proj", "img_mlp_0", "img_mlp_2", "img_mod_lin", "txt_attn_qkv",
                     "txt_attn_proj", "txt_mlp_0", "txt_mlp_2", "txt_mod_lin"):  # fmt: skip
            assert all(t in flux for t in kohya_targets(f"double_blocks_{i}_{rest}"))
    for rest in ("linear1", "linear2", "modulation_lin"):
        assert all(t in flux for t in kohya_targets(f"single_blocks_37_{rest}"))
    assert flux["single_transformer_blocks.37.proj_out"] == (3072, 3072 + 4 * 3072)


def _kohya_state(rank: int = 4, alpha: float = 2.0, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)

    def pair(name: str, out: int, inp: int) -> dict[str, torch.Tensor]:
        return {
            f"lora_unet_{name}.lora_down.weight": torch.randn(rank, inp, generator=gen) * 0.3,
            f"lora_unet_{name}.lora_up.weight": torch.randn(out, rank, generator=gen) * 0.3,
            f"lora_unet_{name}.alpha": torch.tensor(alpha),
        }

    state: dict[str, torch.Tensor] = {}
    state |= pair("double_blocks_0_img_attn_qkv", 3 * D, D)
    state |= pair("double_blocks_0_txt_attn_proj", D, D)
    state |= pair("double_blocks_1_img_mlp_0", 4 * D, D)
    state |= pair("single_blocks_1_linear1", 7 * D, D)
    state |= pair("single_blocks_0_linear2", D, 5 * D)
    state |= pair("final_layer_adaLN_modulation_1", 2 * D, D)
    state["lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"] = torch.zeros(rank, 32)
    return state


def test_kohya_file_converts_to_the_same_weight_change(tiny_model: Path) -> None:
    from diffusers import FluxPipeline

    kohya = _kohya_state()
    converted = convert_to_diffusers(kohya, expected_shapes(TINY_CONFIG))
    assert converted.layout == "kohya"
    assert converted.rank == 4 and converted.alpha == 2.0
    assert converted.modules == 3 + 1 + 1 + 4 + 1 + 1
    assert any("text-encoder" in w for w in converted.warnings)

    pipe = FluxPipeline.from_pretrained(str(tiny_model))
    t = pipe.transformer
    before = {
        "q": t.transformer_blocks[0].attn.to_q.weight.detach().clone(),
        "v": t.transformer_blocks[0].attn.to_v.weight.detach().clone(),
        "mlp": t.single_transformer_blocks[1].proj_mlp.weight.detach().clone(),
        "add_out": t.transformer_blocks[0].attn.to_add_out.weight.detach().clone(),
        "norm_out": t.norm_out.linear.weight.detach().clone(),
    }
    pipe.load_lora_weights(converted.state, adapter_name="kohya")
    pipe.fuse_lora()

    def delta(name: str, rows: slice | None = None) -> torch.Tensor:
        up = kohya[f"lora_unet_{name}.lora_up.weight"]
        up = up[rows] if rows is not None else up
        return (2.0 / 4) * up @ kohya[f"lora_unet_{name}.lora_down.weight"]

    def weight(module: torch.nn.Module) -> torch.Tensor:
        return getattr(module, "base_layer", module).weight.detach()

    torch.testing.assert_close(
        weight(t.transformer_blocks[0].attn.to_q) - before["q"], delta("double_blocks_0_img_attn_qkv", slice(0, D))
    )
    torch.testing.assert_close(
        weight(t.transformer_blocks[0].attn.to_v) - before["v"],
        delta("double_blocks_0_img_attn_qkv", slice(2 * D, 3 * D)),
    )
    torch.testing.assert_close(
        weight(t.single_transformer_blocks[1].proj_mlp) - before["mlp"],
        delta("single_blocks_1_linear1", slice(3 * D, 7 * D)),
    )
    torch.testing.assert_close(
        weight(t.transformer_blocks[0].attn.to_add_out) - before["add_out"], delta("double_blocks_0_txt_attn_proj")
    )
    # BFL's (shift, scale) order becomes diffusers' (scale, shift).
    final = delta("final_layer_adaLN_modulation_1")
    torch.testing.assert_close(weight(t.norm_out.linear) - before["norm_out"], torch.cat([final[D:], final[:D]]))


def _diffusers_state(prefix: str = "transformer.", down: str = "lora_A", up: str = "lora_B") -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    state = {}
    for module, (out, inp) in [
        ("transformer_blocks.0.attn.to_k", (D, D)),
        ("single_transformer_blocks.1.proj_out", (D, 5 * D)),
    ]:
        state[f"{prefix}{module}.{down}.weight"] = torch.randn(8, inp, generator=gen)
        state[f"{prefix}{module}.{up}.weight"] = torch.randn(out, 8, generator=gen)
    return state


def test_diffusers_layout_passes_through_unchanged() -> None:
    state = _diffusers_state()
    converted = convert_to_diffusers(state, expected_shapes(TINY_CONFIG))
    assert converted.layout == "diffusers"
    assert converted.alpha is None and converted.rank == 8
    assert set(converted.state) == set(state)
    for key, tensor in state.items():
        assert torch.equal(converted.state[key], tensor)


@pytest.mark.parametrize(
    ("prefix", "down", "up"),
    [
        ("transformer.", "lora_down", "lora_up"),
        ("diffusion_model.", "lora_A", "lora_B"),
        ("diffusion_model.", "lora_down", "lora_up"),
    ],
)
def test_ai_toolkit_variants_convert_to_the_diffusers_layout(prefix: str, down: str, up: str) -> None:
    state = _diffusers_state(prefix, down, up)
    module = "single_transformer_blocks.1.proj_out"
    state[f"{prefix}{module}.alpha"] = torch.tensor(4.0)
    converted = convert_to_diffusers(state, expected_shapes(TINY_CONFIG))
    assert converted.layout == "ai-toolkit"
    reference = _diffusers_state()
    for key, tensor in reference.items():
        assert torch.equal(converted.state[key], tensor)
    assert converted.state[f"transformer.{module}.alpha"].item() == 4.0


def test_unknown_and_foreign_layouts_are_refused() -> None:
    with pytest.raises(LoraFormatError, match="unknown LoRA key layout"):
        detect_layout(["model.diffusion_model.input_blocks.0.weight"])
    with pytest.raises(LoraFormatError, match="Stable Diffusion"):
        detect_layout(["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", "x.weight"])
    with pytest.raises(LoraFormatError, match="no transformer LoRA"):
        detect_layout(["lora_te1_text_model_encoder_layers_0_mlp_fc1.alpha"])
    bad = _diffusers_state()
    bad["transformer.transformer_blocks.0.attn.to_k.weight"] = torch.zeros(D, D)
    with pytest.raises(LoraFormatError, match="unknown tensor"):
        convert_to_diffusers(bad, None)
    missing_up = {k: v for k, v in _diffusers_state().items() if "to_k.lora_B" not in k}
    with pytest.raises(LoraFormatError, match="lacks its up"):
        convert_to_diffusers(missing_up, None)
    nonexistent = {
        k.replace("transformer_blocks.0.", "transformer_blocks.9."): v for k, v in _diffusers_state().items()
    }
    with pytest.raises(LoraFormatError, match="does not exist in this base model"):
        convert_to_diffusers(nonexistent, expected_shapes(TINY_CONFIG))


def test_a_lora_for_the_full_model_is_refused_for_the_tiny_one() -> None:
    state = {
        "lora_unet_double_blocks_0_img_attn_proj.lora_down.weight": torch.zeros(4, 3072),
        "lora_unet_double_blocks_0_img_attn_proj.lora_up.weight": torch.zeros(3072, 4),
    }
    assert convert_to_diffusers(state, expected_shapes({})).modules == 1
    with pytest.raises(LoraFormatError, match="made for another model"):
        convert_to_diffusers(state, expected_shapes(TINY_CONFIG))
