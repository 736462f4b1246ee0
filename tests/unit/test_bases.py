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
