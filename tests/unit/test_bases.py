"""The base-model registry: each family's planner layout against the modules diffusers and transformers build, the
LoRA targets against peft, and the registry's names."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from isengard.cli.main import main
from isengard.models.bases import BASES, DEFAULT_BASE, UnknownBase, get_base, resolve_base_name
from isengard.models.bases.flux2_klein import qwen3_layout
from isengard.models.memory_storage import lora_numel


def full_width_slice(name: str) -> dict[str, Any]:
    """One double and one single block of a base at its full width."""
    return {**get_base(name).transformer_config, "num_layers": 1, "num_single_layers": 1}


@pytest.mark.parametrize("name", list(BASES))
def test_layout_matches_the_transformer_diffusers_builds(name: str) -> None:
    family = get_base(name).family
    config = full_width_slice(name)
    with torch.device("meta"):
        model = family.transformer_cls()(**config)
    layout = family.layout(config)
    linears = sorted((m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear))
    places = [(layout.outer, 1), *layout.blocks()]
    planned = sorted((lin.in_features, lin.out_features) for place, n in places for lin in place.linears * n)

    assert layout.numel == sum(p.numel() for p in model.parameters())
    assert linears == planned


@pytest.mark.parametrize("name", list(BASES))
def test_lora_targets_match_what_peft_adds(name: str) -> None:
    from peft import LoraConfig

    family = get_base(name).family
    config = full_width_slice(name)
    with torch.device("meta"):
        model = family.transformer_cls()(**config)
    targets = list(family.lora_targets)
    model.add_adapter(LoraConfig(r=16, lora_alpha=16, target_modules=targets))
    layout = family.layout(config)
    planned = sum(lora_numel(place, 16, targets) * n for place, n in [(layout.outer, 1), *layout.blocks()])
    assert planned == sum(p.numel() for p in model.parameters() if p.requires_grad) > 0


def test_published_sizes() -> None:
    """The full-size transformers have the parameter counts their names promise."""
    sizes = {name: spec.family.layout(spec.transformer_config).numel / 1e9 for name, spec in BASES.items()}
    assert round(sizes["flux1-dev"], 2) == round(sizes["flux1-krea-dev"], 2) == 11.90
    assert 3.5 < sizes["flux2-klein-4b"] < 4.5
    assert 8.5 < sizes["flux2-klein-9b"] < 9.5


@pytest.mark.parametrize("name", ["flux2-klein-4b", "flux2-klein-9b"])
def test_qwen3_layout_matches_the_encoder_transformers_builds(name: str) -> None:
    from transformers import Qwen3Config, Qwen3ForCausalLM  # type: ignore[attr-defined]

    config = get_base(name).text_encoder_config
    with torch.device("meta"):
        model = Qwen3ForCausalLM(Qwen3Config(**config))
    assert qwen3_layout(config).numel == sum(p.numel() for p in model.parameters())


def test_registry_names_and_aliases() -> None:
    assert get_base(None).name == DEFAULT_BASE == "flux1-dev"
    with pytest.raises(UnknownBase, match="flux2-klein-4b"):
        get_base("sdxl")
    assert resolve_base_name("black-forest-labs/FLUX.1-dev") == "flux1-dev"
    assert resolve_base_name("flux2_klein_9b") == "flux2-klein-9b"
    assert resolve_base_name("something else") is None


def test_plan_cli_prices_each_base(capsys: pytest.CaptureFixture[str]) -> None:
    peaks = {}
    for name in BASES:
        assert main(["plan", "--json", "--base", name, "--gpu-memory", "12", "--resolution", "1024"]) == 0
        body = json.loads(capsys.readouterr().out)
        assert body["base"] == name
        assert [p["profile"] for p in body["profiles"]] == ["bf16", "int8", "nf4", "nf4-offload"]
        peaks[name] = body["profiles"][0]["estimated_peak_bytes"]
    # klein 4B is a third of FLUX.1's size: its bf16 run needs far less; 9B sits between.
    assert peaks["flux2-klein-4b"] < peaks["flux2-klein-9b"] < peaks["flux1-dev"] == peaks["flux1-krea-dev"]

    assert main(["plan", "--base", "flux2-klein-4b", "--gpu-memory", "12", "--resolution", "1024"]) == 0
    table = capsys.readouterr().out
    assert "FLUX.2 [klein] 4B" in table and "auto:" in table


@pytest.mark.parametrize("name", ["flux1-dev", "flux2-klein-4b"])
def test_a_saved_lora_loads_in_diffusers_and_resumes_at_the_trained_strength(name: str, tmp_path: Any) -> None:
    """alpha != rank: diffusers' own `load_lora_weights` on the base's pipeline gives the trained model's output,
    and the trainer's resume loads the same weights back (each family's file layout)."""
    from isengard.models.tiny import build_tiny_pipeline
    from isengard.plugins.training.flux_lora_config import FluxLoraConfig
    from isengard.plugins.training.flux_lora_stages import add_lora
    from isengard.plugins.training.lora_io import load_lora_into, save_lora

    family = get_base(name).family
    config = FluxLoraConfig(base=name, rank=4, alpha=12.0)
    trained = build_tiny_pipeline(base=name).transformer
    add_lora(trained, config)
    generator = torch.Generator().manual_seed(0)
    for param in trained.parameters():
        if param.requires_grad:
            param.data = torch.randn(param.shape, generator=generator) * 0.2
    path = save_lora(
        tmp_path / "lora.safetensors", trained, rank=4, alpha=12.0, metadata={"base": name},
        alpha_tensors=family.lora_alpha_tensors,
    )  # fmt: skip

    pipe = build_tiny_pipeline(base=name)
    side = 8
    channels = pipe.transformer.config.in_channels // (4 if name.startswith("flux1") else 1)
    latents = torch.randn(1, channels, side, side, generator=generator)
    text = family.encode_prompt(pipe, "a photo", device=torch.device("cpu"), max_sequence_length=16)
    sigmas = torch.tensor([0.5])

    def output(transformer: Any) -> torch.Tensor:
        with torch.no_grad():
            return family.predict(transformer, latents, text, sigmas, guidance_scale=1.0, weight_dtype=torch.float32)

    expected = output(trained)
    plain = output(pipe.transformer)
    pipe.load_lora_weights(str(path), adapter_name="x")
    assert torch.allclose(output(pipe.transformer), expected, atol=1e-5)
    assert not torch.allclose(plain, expected, atol=1e-3)  # the LoRA does change the output

    resumed = build_tiny_pipeline(base=name).transformer
    add_lora(resumed, config)
    load_lora_into(resumed, path)
    assert torch.allclose(output(resumed), expected, atol=1e-5)


@pytest.mark.parametrize("weight_format", ["bf16", "int8", "nf4"])
def test_full_width_slice_of_klein_stores_what_the_planner_says(weight_format: str) -> None:
    """As for FLUX.1 (test_memory_storage): torchao quantizes a meta-device slice of klein 4B at its full width as the
    trainer's quantization_config says, and the planner's bytes match what it stores."""
    from torchao.quantization import quantize_

    from isengard.models.loading import quantization_config
    from isengard.models.memory_storage import transformer_bytes
    from tests.unit.test_memory_storage import model_bytes

    family = get_base("flux2-klein-4b").family
    config = full_width_slice("flux2-klein-4b")
    with torch.device("meta"):
        model = family.transformer_cls()(**config)
    model.to(torch.bfloat16)
    if weight_format != "bf16":
        saved = {**config, "_class_name": family.transformer_class}  # as its config.json names it
        quantize_(model, quantization_config(weight_format, saved).get_apply_tensor_subclass())  # type: ignore[arg-type]
    measured = model_bytes(model)
    outer, blocks = transformer_bytes(family.layout(config), weight_format)  # type: ignore[arg-type]
    planned = outer + sum(size * n for size, n in blocks)
    assert abs(planned - measured) <= 0.05 * measured


def _published_folder(tmp_path: Any, name: str) -> Any:
    """A diffusers folder's index and transformer config as the base's published weights carry them."""
    spec = get_base(name)
    folder = tmp_path / name
    (folder / "transformer").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": spec.family.pipeline_class}))
    (folder / "transformer" / "config.json").write_text(json.dumps(dict(spec.transformer_config)))
    return folder


@pytest.mark.parametrize("name", list(BASES))
def test_a_folder_is_known_by_its_base(tmp_path: Any, name: str) -> None:
    from isengard.models.bases import base_of_folder

    found = base_of_folder(_published_folder(tmp_path, name))
    # FLUX.1 Krea [dev] has FLUX.1 [dev]'s architecture: its folder plans as dev's, which needs the same.
    assert found.family is get_base(name).family
    assert dict(found.transformer_config) == dict(get_base(name).transformer_config)


def test_generation_on_a_gpu_plans_for_the_folders_own_base(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from isengard.models.memory_plan import GIB, plan_generation
    from isengard.plugins.image.flux_memory import PLANNED_RESOLUTION, choose_generation_setup, setup_from_plan

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (12 * GIB, 16 * GIB))
    folder = _published_folder(tmp_path, "flux2-klein-9b")
    config = dict(get_base("flux2-klein-9b").transformer_config)
    own = setup_from_plan(plan_generation(transformer_config=config, resolution=PLANNED_RESOLUTION,
                                          gpu_bytes=12 * GIB, base="flux2-klein-9b"))  # fmt: skip
    default = setup_from_plan(plan_generation(transformer_config=config, resolution=PLANNED_RESOLUTION,
                                              gpu_bytes=12 * GIB))  # fmt: skip

    chosen = choose_generation_setup(folder, torch.device("cuda"))

    assert own.reason != default.reason  # the text encoder of klein 9B (Qwen3-8B) is not FLUX.1-dev's T5
    assert chosen.reason == own.reason


def test_the_readme_says_each_base_its_licence_and_how_to_put_its_weights_in_place() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = {line.split("`")[1]: line for line in readme.splitlines() if line.startswith("| `")}
    for spec in BASES.values():
        row = rows.get(spec.name, "")
        assert spec.repo_id in row and spec.licence in row, (spec.name, row)
        assert ("(gated)" in row) == spec.gated, spec.name
        assert spec.download_command(f"data/models/{spec.name}") in readme, spec.name
        if spec.distilled_repo_id is not None:
            assert f"hf download {spec.distilled_repo_id} --local-dir data/models/{spec.name}-distilled" in readme
