"""What a ComfyUI workflow needs from the server it runs on: its node types and the files its loaders name.

ComfyUI describes each node type at `GET /object_info/<type>`, with the current choice list of every input that
picks a file (`unet_name`, `clip_name1`, `vae_name`, ...). A file the workflow names that is not in that list is
missing on the server; the prompt would be refused with `value_not_in_list`. Inputs Isengard fills per request (the
prompt, the seed, the LoRA chain) are not checked here: LoRAs are checked per request against `GET /models/loras`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from isengard.plugins.image.comfyui_workflow import Graph, markers

NodeInfo = Callable[[str], dict[str, Any] | None]


def _choices(spec: Any) -> list[Any] | None:
    """The choice list of an input spec: `[[...choices], {...}]`, or newer servers' `["COMBO", {"options": [...]}]`."""
    if not isinstance(spec, list) or not spec:
        return None
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        options = spec[1].get("options")
        return options if isinstance(options, list) else None
    return None


def missing_on_server(graph: Graph, node_info: NodeInfo) -> list[str]:
    """Each node type the server lacks and each file the workflow names that the server does not list."""
    found = markers(graph)
    filled = {(target.node_id, target.input_name) for targets in found.values() for target in targets}
    lora_nodes = {target.node_id for target in found.get("lora", [])}
    missing: list[str] = []
    for node_id, node in graph.items():
        class_type = str(node.get("class_type"))
        spec = node_info(class_type)
        if spec is None:
            missing.append(f"node type {class_type} (not installed on the server)")
            continue
        inputs = {**spec.get("input", {}).get("required", {}), **spec.get("input", {}).get("optional", {})}
        for name, value in node.get("inputs", {}).items():
            if node_id in lora_nodes or (node_id, name) in filled or not isinstance(value, str):
                continue
            choices = _choices(inputs.get(name))
            if choices is not None and value not in choices:
                missing.append(f"{value} ({class_type}.{name})")
    return missing


def cached(node_info: NodeInfo) -> NodeInfo:
    """One request per node type for a whole availability check."""
    cache: dict[str, dict[str, Any] | None] = {}

    def lookup(class_type: str) -> dict[str, Any] | None:
        if class_type not in cache:
            cache[class_type] = node_info(class_type)
        return cache[class_type]

    return lookup
