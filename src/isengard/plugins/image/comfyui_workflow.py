"""ComfyUI workflow templates (API format) and how a request's values are put into them.

A template marks the nodes Isengard fills through the node title (`_meta.title`, editable in ComfyUI's UI):
`isengard:prompt`, `isengard:seed,steps`, `isengard:width,height`, `isengard:guidance`, `isengard:lora`,
`isengard:filename_prefix`. A field goes into the input of the same name (`prompt` into `text`); another input can
be named explicitly: `isengard:seed=noise_seed`. The `isengard:lora` node (a LoraLoaderModelOnly) is repeated into
a chain, one per requested LoRA, or taken out of the graph when there are none.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from isengard.plugins.api import DEFAULT_BASE, PluginError, get_base

MARKER = "isengard:"
DEFAULT_WORKFLOW = get_base(DEFAULT_BASE).comfyui_workflow
# Where a field goes when the title does not name the input.
DEFAULT_INPUTS = {
    "prompt": "text",
    "seed": "seed",
    "steps": "steps",
    "guidance": "guidance",
    "width": "width",
    "height": "height",
    "filename_prefix": "filename_prefix",
}
REQUIRED_FIELDS = ("prompt", "seed")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$")

Graph = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Target:
    node_id: str
    input_name: str


def shipped_workflows() -> dict[str, str]:
    folder = resources.files("isengard.plugins.image") / "workflows"
    return {
        entry.name.removesuffix(".json"): entry.read_text()
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    }


def available_workflows(user_dir: Path | None) -> list[str]:
    names = set(shipped_workflows())
    if user_dir is not None and user_dir.is_dir():
        names |= {p.stem for p in user_dir.glob("*.json") if _NAME.match(p.stem)}
    return sorted(names)


def load_workflow(name: str | None, user_dir: Path | None) -> tuple[str, Graph]:
    """A template by name: the user's folder first (confined to it), then the shipped ones."""
    name = (name or DEFAULT_WORKFLOW).removesuffix(".json")
    if not _NAME.match(name):
        raise PluginError(f"invalid workflow name '{name}': letters, digits, '.', '_' and '-' only")
    text: str | None = None
    if user_dir is not None:
        root = user_dir.expanduser().resolve()
        candidate = (root / f"{name}.json").resolve()
        if root not in candidate.parents:
            raise PluginError(f"workflow '{name}' is outside the workflow folder")
        if candidate.is_file():
            text = candidate.read_text(encoding="utf-8")
    if text is None:
        text = shipped_workflows().get(name)
    if text is None:
        raise PluginError(f"no workflow named '{name}' (available: {', '.join(available_workflows(user_dir))})")
    try:
        graph = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PluginError(f"workflow '{name}' is not valid JSON: {exc}") from None
    if not isinstance(graph, dict) or not all(isinstance(n, dict) and "class_type" in n for n in graph.values()):
        raise PluginError(f"workflow '{name}' is not in ComfyUI's API format (export it with 'Save (API)')")
    return name, graph


def markers(graph: Graph) -> dict[str, list[Target]]:
    """Field name -> the inputs it is written to, from the `isengard:` node titles."""
    found: dict[str, list[Target]] = {}
    for node_id, node in graph.items():
        title = str(node.get("_meta", {}).get("title", ""))
        if not title.startswith(MARKER):
            continue
        for item in title[len(MARKER) :].split(","):
            field, _, input_name = item.strip().partition("=")
            if field:
                found.setdefault(field, []).append(Target(node_id, input_name or DEFAULT_INPUTS.get(field, field)))
    return found


def _replace_links(graph: Graph, old: str, new: list[Any]) -> None:
    for node in graph.values():
        for key, value in node.get("inputs", {}).items():
            if isinstance(value, list) and len(value) == 2 and value[0] == old:
                node["inputs"][key] = list(new)


def _chain_loras(graph: Graph, lora_nodes: list[Target], loras: list[tuple[str, float]]) -> None:
    if not lora_nodes:
        if loras:
            raise PluginError("this workflow has no node titled 'isengard:lora', so it cannot apply LoRAs")
        return
    node_id = lora_nodes[0].node_id
    template = graph.pop(node_id)
    source = template["inputs"].get("model")
    if not loras:
        # No LoRA: whatever read the LoRA node's output now reads its input.
        _replace_links(graph, node_id, source)
        return
    previous = source
    chain: list[str] = []
    for index, (name, weight) in enumerate(loras):
        new_id = node_id if index == 0 else f"{node_id}_{index}"
        node = copy.deepcopy(template)
        node["inputs"]["model"] = previous
        node["inputs"]["lora_name"] = name
        node["inputs"]["strength_model"] = weight
        graph[new_id] = node
        previous = [new_id, 0]
        chain.append(new_id)
    # Whatever read the template node's output now reads the end of the chain.
    for other_id, node in graph.items():
        if other_id in chain:
            continue
        for key, value in node.get("inputs", {}).items():
            if isinstance(value, list) and len(value) == 2 and value[0] == node_id:
                node["inputs"][key] = [chain[-1], value[1]]


def fill_workflow(graph: Graph, values: dict[str, Any], loras: list[tuple[str, float]]) -> Graph:
    """A copy of the template with the values written into the marked inputs and the LoRA chain built."""
    filled = copy.deepcopy(graph)
    found = markers(filled)
    missing = [field for field in REQUIRED_FIELDS if field not in found]
    if missing:
        raise PluginError(f"the workflow has no node titled 'isengard:{missing[0]}' to receive the {missing[0]}")
    for field, value in values.items():
        for target in found.get(field, []):
            inputs = filled[target.node_id].setdefault("inputs", {})
            if field == "seed" and target.input_name == "seed" and "noise_seed" in inputs:
                inputs["noise_seed"] = value
            else:
                inputs[target.input_name] = value
    _chain_loras(filled, found.get("lora", []), loras)
    for node in filled.values():
        node.pop("_meta", None)  # titles are for people; the server does not need them
    return filled
