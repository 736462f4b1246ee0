"""The ComfyUI plugin against a protocol-faithful local ComfyUI stand-in: success with LoRAs, validation as ComfyUI
does it, execution errors, its queue (delete while waiting, interrupt while running), availability that names the
missing files, comparison grids, and a server that is down."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from isengard.domain import LoraRef
from isengard.models.bases import base_names, get_base
from isengard.plugins.api import PluginError
from isengard.plugins.image.comfyui import ComfyUIGenerator
from isengard.plugins.image.comfyui_workflow import load_workflow, markers
from isengard.plugins.image.grid import column_labels, compose_grid, row_labels
from isengard.plugins.image.outputs import read_png_params
from isengard.plugins.image.request import GridSpec, ImageRequest
from isengard.redis_server import free_port
from tests.support.comfyui_jobs import TINY_WORKFLOW, ComfySettings, data_with_a_lora, image_request
from tests.support.comfyui_server import KLEIN_MODELS, FakeComfyUI, running_comfyui
from tests.support.recording_context import RecordingContext


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return data_with_a_lora(tmp_path)


@pytest.fixture()
def comfy(data_dir: Path, tmp_path: Path) -> Any:
    # ComfyUI sees Isengard's LoRA folder, as extra_model_paths.yaml would make it.
    with running_comfyui(data_dir / "loras", tmp_path / "comfy-output") as server:
        yield server


LORA = LoraRef(lora_id="l1", path="loras/char/run/final.safetensors", weight=0.6, name="final").model_dump()


def test_generates_with_a_lora_and_records_everything(comfy: FakeComfyUI, data_dir: Path) -> None:
    plugin = ComfyUIGenerator(None, ComfySettings(comfy.url))
    assert plugin.capabilities().available
    assert plugin.capabilities().details["version"] == "0.3.64"
    ctx = RecordingContext(data_dir, data_dir / "models")
    summary = plugin.run(ctx, image_request(num_images=2, loras=[LORA], trigger_word="sirx"))
    assert summary["images"] == 2 and summary["seeds"] == [11, 12]
    # What ComfyUI received: our ids, our values, the LoRA by its name relative to loras/.
    sent = comfy.prompts[0]
    assert sent["client_id"] and sent["prompt_id"]
    graph = sent["prompt"]
    assert graph["5"]["inputs"]["text"] == "sirx, a knight"
    assert graph["4"]["inputs"]["lora_name"] == "char/run/final.safetensors"
    assert graph["4"]["inputs"]["strength_model"] == 0.6
    assert graph["9"]["inputs"]["seed"] == 11 and comfy.prompts[1]["prompt"]["9"]["inputs"]["seed"] == 12
    # Progress followed the sampler's steps across both images.
    generating = [p for p in ctx.progress if p.stage == "generating"]
    assert (generating[-1].step, generating[-1].total) == (10, 10) and len(generating) == 10
    first, second = ctx.artifacts
    with Image.open(data_dir / first.path) as image:
        assert image.size == (96, 64)
        a = image.convert("RGB").getpixel((80, 60))
    with Image.open(data_dir / second.path) as image:
        b = image.convert("RGB").getpixel((80, 60))
    assert a != b  # different seeds, different images
    params = read_png_params(data_dir / first.path)
    assert params["plugin"] == "comfyui" and params["workflow"] == "flux-dev-lora" and params["seed"] == 11
    assert params["loras"][0]["weight"] == 0.6
    assert (data_dir / first.meta["thumbnail_path"]).is_file()


def test_a_lora_the_server_does_not_list_is_refused_before_queueing(comfy: FakeComfyUI, data_dir: Path) -> None:
    missing = LoraRef(lora_id="l2", path="loras/char/other.safetensors", name="other").model_dump()
    ctx = RecordingContext(data_dir, data_dir / "models")
    with pytest.raises(PluginError) as caught:
        ComfyUIGenerator(None, ComfySettings(comfy.url)).run(ctx, image_request(loras=[missing]))
    message = str(caught.value)
    assert "does not list the LoRA char/other.safetensors" in message and "extra_model_paths.yaml" in message
    assert comfy.prompts == [] and ctx.artifacts == []


def test_an_execution_error_names_the_node(data_dir: Path, tmp_path: Path) -> None:
    with running_comfyui(data_dir / "loras", tmp_path / "out", fail_node_type="VAEDecode") as comfy:
        ctx = RecordingContext(data_dir, data_dir / "models")
        with pytest.raises(PluginError, match=r"node 10 \(VAEDecode\).*out of memory"):
            ComfyUIGenerator(None, ComfySettings(comfy.url)).run(ctx, image_request())
    assert ctx.artifacts == []


def test_a_server_that_is_down_fails_fast_with_a_clear_message(data_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    plugin = ComfyUIGenerator(None, ComfySettings(url))
    capability = plugin.capabilities()
    assert not capability.available and "not reachable" in (capability.reason or "")
    ctx = RecordingContext(data_dir, data_dir / "models")
    started = time.monotonic()
    with pytest.raises(PluginError, match=f"ComfyUI at {url} is not reachable"):
        plugin.run(ctx, image_request())
    assert time.monotonic() - started < 10


def test_a_server_that_stops_answering_times_out(data_dir: Path, tmp_path: Path) -> None:
    with running_comfyui(data_dir / "loras", tmp_path / "out", step_seconds=1.0) as comfy:
        ctx = RecordingContext(data_dir, data_dir / "models")
        with pytest.raises(PluginError, match="did not finish the prompt in time"):
            ComfyUIGenerator(None, ComfySettings(comfy.url, timeout=1.5)).run(ctx, image_request(steps=50))
        assert comfy.interrupts  # the abandoned prompt is interrupted, not left running


def _user_workflow(tmp_path: Path, graph: dict[str, Any]) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir(exist_ok=True)
    (folder / "tiny.json").write_text(json.dumps(graph))
    return folder


def test_user_workflow_from_the_configured_folder(comfy: FakeComfyUI, data_dir: Path, tmp_path: Path) -> None:
    folder = _user_workflow(tmp_path, TINY_WORKFLOW)
    ctx = RecordingContext(data_dir, data_dir / "models")
    summary = ComfyUIGenerator(None, ComfySettings(comfy.url, folder)).run(ctx, image_request(workflow="tiny"))
    assert summary["workflow"] == "tiny" and summary["images"] == 1
    assert comfy.prompts[0]["prompt"]["7"]["inputs"]["steps"] == 5


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # A workflow missing KSampler's and CLIPTextEncode's required inputs, as ComfyUI refuses it.
        (
            lambda g: (
                [g["7"]["inputs"].pop(k) for k in ("cfg", "sampler_name", "scheduler", "negative", "model")]
                and g["5"]["inputs"].pop("clip")
            ),
            r"node 5 \(CLIPTextEncode\), input 'clip': Required input is missing.*node 7 \(KSampler\), input 'model'",
        ),
        (
            lambda g: g["7"]["inputs"].update(sampler_name="euler_magic"),
            r"node 7 \(KSampler\), input 'sampler_name': Value not in list sampler_name: 'euler_magic' not in",
        ),
        (lambda g: g["7"]["inputs"].update(cfg=500.0), r"input 'cfg': Value 500.0 bigger than max of 100.0"),
        (
            lambda g: g["7"]["inputs"].update(latent_image=["5", 0]),
            r"input 'latent_image': Return type mismatch .*received_type\(CONDITIONING\) mismatch input_type\(LATENT\)",
        ),
        (
            lambda g: g["3"]["inputs"].update(vae_name="other-vae.safetensors"),
            r"node 3 \(VAELoader\), input 'vae_name': Value not in list",
        ),
        # An unknown node type refuses the whole prompt (no node errors), with ComfyUI's own message.
        (
            lambda g: g["8"].update(class_type="VAEDecodeTiledPlus"),
            r"refused the workflow: Cannot execute because node VAEDecodeTiledPlus does not exist. Node ID '#8'",
        ),
    ],
    ids=["missing-inputs", "choice-list", "number-bound", "link-type", "model-file", "unknown-node"],
)
def test_an_invalid_workflow_is_refused_with_comfyuis_message(
    comfy: FakeComfyUI, data_dir: Path, tmp_path: Path, change: Any, expected: str
) -> None:
    graph = json.loads(json.dumps(TINY_WORKFLOW))
    change(graph)
    ctx = RecordingContext(data_dir, data_dir / "models")
    with pytest.raises(PluginError, match=expected):
        ComfyUIGenerator(None, ComfySettings(comfy.url, _user_workflow(tmp_path, graph))).run(
            ctx, image_request(workflow="tiny")
        )
    assert comfy.prompts == [] and ctx.artifacts == []


def test_availability_names_the_files_the_server_lacks(data_dir: Path, tmp_path: Path) -> None:
    with running_comfyui(data_dir / "loras", tmp_path / "out") as comfy:
        comfy.models["diffusion_models"] = []
        comfy.models["text_encoders"] = ["clip_l.safetensors"]
        capability = ComfyUIGenerator(None, ComfySettings(comfy.url)).capabilities()
        assert not capability.available
        reason = capability.reason or ""
        assert "flux1-dev.safetensors (UNETLoader.unet_name)" in reason
        assert "t5xxl_fp16.safetensors (DualCLIPLoader.clip_name1)" in reason
        flux_missing = capability.details["missing"]["flux-dev-lora"]  # only what is missing, per workflow
        assert not any("clip_l" in item or item.startswith("ae.safetensors") for item in flux_missing)
        assert "flux-2-klein-base-4b.safetensors (UNETLoader.unet_name)" in reason  # each base's workflow
        comfy.models["diffusion_models"] = ["flux1-dev.safetensors"]
        comfy.models["text_encoders"] = ["clip_l.safetensors", "t5xxl_fp16.safetensors"]
        ready = ComfyUIGenerator(None, ComfySettings(comfy.url)).capabilities()
        assert ready.available and ready.details["workflows"] == ["flux-dev-lora"] and ready.details["grid"]
        # A user's workflow that needs a custom node, or is not even JSON, is named and left out; the rest works.
        folder = _user_workflow(tmp_path, {**TINY_WORKFLOW, "8": {"class_type": "VAEDecodeTiledPlus", "inputs": {}}})
        (folder / "broken.json").write_text("{not json")
        mixed = ComfyUIGenerator(None, ComfySettings(comfy.url, folder)).capabilities()
        assert mixed.available and mixed.details["workflows"] == ["flux-dev-lora"]
        assert mixed.details["missing"]["tiny"] == ["node type VAEDecodeTiledPlus (not installed on the server)"]
        assert "not valid JSON" in mixed.details["missing"]["broken"][0]


def test_a_comparison_grid_renders_each_cell_as_its_own_prompt(comfy: FakeComfyUI, data_dir: Path) -> None:
    columns = [{"label": "base", "loras": []}, {"label": "", "loras": [LORA]}]
    grid = {"prompts": ["a knight"], "seeds": [3, 4], "columns": columns}
    ctx = RecordingContext(data_dir, data_dir / "models")
    request = image_request(prompt="", grid=grid, trigger_word="sirx")
    summary = ComfyUIGenerator(None, ComfySettings(comfy.url)).run(ctx, request)
    assert summary["grid"] and summary["cells"] == 4 and len(comfy.prompts) == 4
    sent = [(p["prompt"]["9"]["inputs"]["seed"], p["prompt"].get("4", {}).get("inputs", {}).get("lora_name"))
            for p in comfy.prompts]  # fmt: skip
    assert sent == [(3, None), (3, "char/run/final.safetensors"), (4, None), (4, "char/run/final.safetensors")]
    assert all(p["prompt"]["5"]["inputs"]["text"] == "sirx, a knight" for p in comfy.prompts)
    # The grid is composed here, from the cells ComfyUI rendered, with the diffusers engine's helper.
    cells = {}
    for index, body in enumerate(comfy.prompts):
        saved = comfy.history[body["prompt_id"]]["outputs"]["11"]["images"][0]
        with Image.open(comfy.output_dir / saved["subfolder"] / saved["filename"]) as image:
            cells[(index // 2, index % 2)] = image.convert("RGB")
    spec = GridSpec.model_validate(grid)
    # Labelled with the prompts as rendered: the trigger word in place.
    rendered = ImageRequest.model_validate(request)
    expected = compose_grid(cells, column_labels(spec, rendered), row_labels(spec, rendered))
    (artifact,) = ctx.artifacts
    with Image.open(data_dir / artifact.path) as image:
        assert image.size == expected.size
        assert image.convert("RGB").tobytes() == expected.tobytes()
    params = read_png_params(data_dir / artifact.path)
    assert params["kind"] == "grid" and params["plugin"] == "comfyui" and params["seeds"] == [3, 4]


def _model_reader(graph: dict[str, Any]) -> dict[str, Any]:
    """The node that samples with the model (the end of the LoRA chain feeds it)."""
    return next(n for n in graph.values() if n["class_type"] in ("KSampler", "CFGGuider"))


@pytest.mark.parametrize("base", base_names())
def test_each_bases_shipped_graph_validates_with_zero_one_and_two_loras(
    comfy: FakeComfyUI, data_dir: Path, base: str
) -> None:
    # A server with every base's files, as one ComfyUI install holding them all would list them.
    for folder, files in {**KLEIN_MODELS}.items():
        comfy.models[folder] = [*comfy.models[folder], *files]
    comfy.models["diffusion_models"].append("flux1-krea-dev.safetensors")
    (data_dir / "loras" / "char" / "run" / "step-10.safetensors").write_bytes(b"weights")
    second = LoraRef(lora_id="l3", path="loras/char/run/step-10.safetensors", weight=0.4, name="s10").model_dump()
    workflow = get_base(base).comfyui_workflow
    assert workflow in ComfyUIGenerator(None, ComfySettings(comfy.url)).capabilities().details["workflows"]
    for loras in ([], [LORA], [LORA, second]):
        ctx = RecordingContext(data_dir, data_dir / "models")
        summary = ComfyUIGenerator(None, ComfySettings(comfy.url)).run(
            ctx, image_request(base=base, loras=loras, steps=3, guidance=2.5)
        )
        assert summary["images"] == 1 and summary["workflow"] == workflow
        assert [p.step for p in ctx.progress if p.stage == "generating"][-1] == 3  # the sampler's steps, followed
    no_lora, one, two = (body["prompt"] for body in comfy.prompts)
    _, template = load_workflow(workflow, None)
    loader = next(k for k, n in template.items() if n["class_type"] == "UNETLoader")
    assert not any(n["class_type"] == "LoraLoaderModelOnly" for n in no_lora.values())
    assert _model_reader(no_lora)["inputs"]["model"] == [loader, 0]
    assert _model_reader(one)["inputs"]["model"] == ["4", 0]
    assert two["4_1"]["inputs"]["model"] == ["4", 0] and _model_reader(two)["inputs"]["model"] == ["4_1", 0]
    assert two["4_1"]["inputs"]["lora_name"] == "char/run/step-10.safetensors"
    # The request's values reached the nodes the template marks, whatever the family's graph looks like.
    for field, value in {"prompt": "a knight", "seed": 11, "steps": 3, "guidance": 2.5, "width": 96}.items():
        for target in markers(template)[field]:
            assert one[target.node_id]["inputs"][target.input_name] == value, (field, target)
