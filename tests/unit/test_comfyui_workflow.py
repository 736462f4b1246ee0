"""ComfyUI workflow templates: markers, value injection, the LoRA chain, template lookup confined to its folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from isengard.domain import LoraRef
from isengard.plugins.api import PluginError
from isengard.plugins.image.comfyui import lora_name_for_comfyui
from isengard.plugins.image.comfyui_client import describe_node_errors
from isengard.plugins.image.comfyui_workflow import available_workflows, fill_workflow, load_workflow, markers

VALUES = {"prompt": "a cat", "seed": 5, "steps": 20, "guidance": 2.5, "width": 512, "height": 768}


def test_the_shipped_flux_template_has_every_marker() -> None:
    name, graph = load_workflow(None, None)
    assert name == "flux-dev-lora"
    assert set(markers(graph)) >= {"prompt", "seed", "steps", "guidance", "width", "height", "lora", "filename_prefix"}
    assert graph["8"]["class_type"] == "EmptySD3LatentImage"


def test_values_go_into_the_marked_inputs_and_titles_are_dropped() -> None:
    _, graph = load_workflow("flux-dev-lora", None)
    filled = fill_workflow(graph, VALUES, [("char/run/lora.safetensors", 0.7)])
    assert filled["5"]["inputs"]["text"] == "a cat"
    assert filled["9"]["inputs"]["seed"] == 5 and filled["9"]["inputs"]["steps"] == 20
    assert filled["6"]["inputs"]["guidance"] == 2.5
    assert (filled["8"]["inputs"]["width"], filled["8"]["inputs"]["height"]) == (512, 768)
    assert filled["4"]["inputs"] == {"model": ["1", 0], "lora_name": "char/run/lora.safetensors", "strength_model": 0.7}
    assert all("_meta" not in node for node in filled.values())
    assert graph["5"]["inputs"]["text"] == ""  # the template itself is untouched


def test_several_loras_chain_and_no_lora_removes_the_node() -> None:
    _, graph = load_workflow("flux-dev-lora", None)
    chained = fill_workflow(graph, VALUES, [("a.safetensors", 1.0), ("b.safetensors", 0.5), ("c.safetensors", 0.2)])
    assert chained["4"]["inputs"]["model"] == ["1", 0]
    assert chained["4_1"]["inputs"]["model"] == ["4", 0] and chained["4_1"]["inputs"]["lora_name"] == "b.safetensors"
    assert chained["4_2"]["inputs"]["model"] == ["4_1", 0] and chained["4_2"]["inputs"]["strength_model"] == 0.2
    assert chained["9"]["inputs"]["model"] == ["4_2", 0]  # the sampler reads the end of the chain
    plain = fill_workflow(graph, VALUES, [])
    assert "4" not in plain
    assert plain["9"]["inputs"]["model"] == ["1", 0]


def test_explicit_input_names_and_missing_markers() -> None:
    graph = {
        "1": {"class_type": "CLIPTextEncode", "_meta": {"title": "isengard:prompt"}, "inputs": {"text": ""}},
        "2": {"class_type": "RandomNoise", "_meta": {"title": "isengard:seed=noise_seed"}, "inputs": {}},
    }
    filled = fill_workflow(graph, {"prompt": "x", "seed": 9}, [])
    assert filled["2"]["inputs"] == {"noise_seed": 9}
    with pytest.raises(PluginError, match="cannot apply LoRAs"):
        fill_workflow(graph, {"prompt": "x", "seed": 9}, [("a.safetensors", 1.0)])
    del graph["2"]
    with pytest.raises(PluginError, match="isengard:seed"):
        fill_workflow(graph, {"prompt": "x", "seed": 9}, [])


def test_user_workflows_are_confined_to_their_folder(tmp_path: Path) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "mine.json").write_text('{"1": {"class_type": "SaveImage", "inputs": {}}}')
    (tmp_path / "secret.json").write_text('{"1": {"class_type": "SaveImage", "inputs": {}}}')
    (folder / "broken.json").write_text("{not json")
    (folder / "ui-format.json").write_text('{"nodes": [], "links": []}')
    assert "mine" in available_workflows(folder) and "flux-dev-lora" in available_workflows(folder)
    assert load_workflow("mine", folder)[1]["1"]["class_type"] == "SaveImage"
    for name in ("../secret", "/etc/passwd", "..", "a/b"):
        with pytest.raises(PluginError, match="invalid workflow name"):
            load_workflow(name, folder)
    with pytest.raises(PluginError, match="no workflow named 'absent'"):
        load_workflow("absent", folder)
    with pytest.raises(PluginError, match="not valid JSON"):
        load_workflow("broken", folder)
    with pytest.raises(PluginError, match="API format"):
        load_workflow("ui-format", folder)


def test_lora_names_are_relative_to_the_lora_folder() -> None:
    ref = LoraRef(lora_id="x", path="loras/char/run/final.safetensors", name="final")
    assert lora_name_for_comfyui(ref) == "char/run/final.safetensors"
    with pytest.raises(PluginError, match="loras/"):
        lora_name_for_comfyui(LoraRef(lora_id="y", path="outputs/elsewhere.safetensors"))


def test_node_errors_become_one_readable_sentence() -> None:
    body = {
        "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation"},
        "node_errors": {
            "4": {
                "errors": [
                    {
                        "type": "value_not_in_list",
                        "message": "Value not in list",
                        "details": "lora_name: 'x.safetensors' not in []",
                        "extra_info": {"input_name": "lora_name"},
                    }
                ],
                "dependent_outputs": ["11"],
                "class_type": "LoraLoaderModelOnly",
            }
        },
    }
    message = describe_node_errors(body)
    assert "node 4 (LoraLoaderModelOnly), input 'lora_name': Value not in list" in message
