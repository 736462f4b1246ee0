"""Image generation through a ComfyUI server (ISENGARD_COMFYUI_URL), from API-format workflow templates.

The protocol lives in `comfyui_client`. Availability is more than a ping: the server must have the node types and
the model files the workflows name (`comfyui_models`). Comparison grids render each cell as its own prompt and are
composed here with the same helper as the diffusers engine.

LoRAs: ComfyUI must see Isengard's LoRA folder through its `extra_model_paths.yaml` (workflows/README.md); a LoRA is
named by its path relative to `data/loras`, and each request checks that the server lists it before queueing.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from PIL import Image
from pydantic import BaseModel, Field

from isengard.domain import LoraRef
from isengard.plugins.api import Capability, JobContext, PluginError, PluginSettings, SettingsConfigDict, get_base
from isengard.plugins.image.comfyui_client import (
    CONNECT_TIMEOUT,
    ComfyUIClient,
    ComfyUIError,
    follow_prompt,
)
from isengard.plugins.image.comfyui_models import NodeInfo, cached, missing_on_server
from isengard.plugins.image.comfyui_workflow import Graph, available_workflows, fill_workflow, load_workflow
from isengard.plugins.image.grid import GridCell, grid_params, render_grid
from isengard.plugins.image.interface import ImagePlugin
from isengard.plugins.image.outputs import save_output
from isengard.plugins.image.request import ImageRequest, image_seeds, lora_summary, snap_size, with_trigger_word

__all__ = ["ComfyUIError", "ComfyUIGenerator", "lora_name_for_comfyui"]

EXTRA_PATHS_HINT = (
    "add Isengard's LoRA folder to ComfyUI's extra_model_paths.yaml (see plugins/image/workflows/README.md)"
)


def lora_name_for_comfyui(ref: LoraRef) -> str:
    """The name ComfyUI knows a LoRA by: its path relative to the data tree's `loras` folder."""
    path = PurePosixPath(ref.path)
    if path.parts[:1] != ("loras",) or ".." in path.parts or len(path.parts) < 2:
        raise ComfyUIError(
            f"LoRA {ref.name or ref.lora_id} is not under the data folder's loras/, so ComfyUI cannot see it"
        )
    return str(PurePosixPath(*path.parts[1:]))


class ComfyUISettings(PluginSettings):
    """ISENGARD_COMFYUI_URL: the server; ISENGARD_COMFYUI_WORKFLOWS_DIR: user workflow templates (paths are confined
    to it); ISENGARD_COMFYUI_TIMEOUT_SECONDS: how long one prompt may take."""

    model_config = SettingsConfigDict(env_prefix="ISENGARD_COMFYUI_")

    url: str | None = None
    workflows_dir: Path | None = None
    timeout_seconds: float = Field(default=3600.0, gt=0)


class ComfyUIGenerator(ImagePlugin):
    name: ClassVar[str] = "comfyui"
    description: ClassVar[str] = "FLUX through a ComfyUI server, from API-format workflow templates"
    request_model: ClassVar[type[BaseModel]] = ImageRequest

    settings_model = ComfyUISettings
    config: ComfyUISettings

    @property
    def url(self) -> str | None:
        return self.config.url

    @property
    def workflows_dir(self) -> Path | None:
        return self.config.workflows_dir

    def capabilities(self) -> Capability:
        if not self.url:
            return Capability(available=False, reason="no ComfyUI server configured: set ISENGARD_COMFYUI_URL")
        client = ComfyUIClient(self.url, timeout=CONNECT_TIMEOUT)
        try:
            stats = client.system_stats()
            node_info = cached(client.object_info)
            names = available_workflows(self.workflows_dir)
            lacking = {name: self._lacking(name, node_info) for name in names}
        except ComfyUIError as exc:
            return Capability(available=False, reason=str(exc))
        finally:
            client.close()
        usable = [name for name in names if not lacking[name]]
        details = {
            "url": self.url,
            "version": (stats.get("system") or {}).get("comfyui_version"),
            "workflows": usable,
            "missing": {name: found for name, found in lacking.items() if found},
            "grid": True,
        }
        if not usable:
            what = "; ".join(f"{name} needs {', '.join(found)}" for name, found in lacking.items())
            return Capability(available=False, reason=f"ComfyUI at {self.url} lacks what the workflows use: {what}",
                              details=details)  # fmt: skip
        return Capability(available=True, details=details)

    def _lacking(self, name: str, node_info: NodeInfo) -> list[str]:
        try:
            graph = load_workflow(name, self.workflows_dir)[1]
        except ComfyUIError:
            raise  # the server, not the file
        except PluginError as exc:
            return [f"a readable workflow file ({exc})"]
        return missing_on_server(graph, node_info)

    def generate(self, ctx: JobContext, request: BaseModel) -> dict[str, Any]:
        assert isinstance(request, ImageRequest)
        if not self.url:
            raise ComfyUIError("no ComfyUI server configured: set ISENGARD_COMFYUI_URL")
        width, height, note = snap_size(request.width, request.height)
        if note:
            ctx.log(note, level="warning")
        # Without a named workflow, the base's own template (each family loads its model files differently).
        if request.workflow is None and request.checkpoint == "distilled":
            raise ComfyUIError(
                "the shipped ComfyUI workflows load the Base checkpoint: name a workflow of yours that loads the "
                "distilled one (plugins/image/workflows/README.md)"
            )
        workflow = request.workflow or get_base(request.base).comfyui_workflow
        workflow_name, template = load_workflow(workflow, self.workflows_dir)
        client = ComfyUIClient(self.url)
        try:
            refs = request.loras if request.grid is None else [r for c in request.grid.columns for r in c.loras]
            self._check_loras(client, refs)
            run = _PromptRunner(self, ctx, client, template, request, (width, height))
            with client.websocket() as ws:
                run.ws = ws
                if request.grid is not None:
                    return self._grid(ctx, run, request, workflow_name, note)
                return self._images(ctx, run, request, workflow_name, note)
        finally:
            client.close()

    def _check_loras(self, client: ComfyUIClient, refs: list[LoraRef]) -> None:
        """ComfyUI would refuse a LoRA it does not list; say why and how to fix it before queueing anything."""
        if not refs:
            return
        listed = set(client.models("loras"))
        absent = [lora_name_for_comfyui(ref) for ref in refs if lora_name_for_comfyui(ref) not in listed]
        if absent:
            raise ComfyUIError(f"ComfyUI at {self.url} does not list the LoRA {', '.join(absent)}: {EXTRA_PATHS_HINT}")

    def _images(
        self, ctx: JobContext, run: _PromptRunner, request: ImageRequest, workflow_name: str, note: str | None
    ) -> dict[str, Any]:
        prompt = with_trigger_word(request.prompt, request.trigger_word, request.add_trigger_word)
        artifacts, seeds = [], []
        total = request.steps * request.num_images
        for index, seed in enumerate(image_seeds(request)):
            # One prompt per image with its own seed, so each image can be reproduced alone.
            images, prompt_id = run.render(prompt, seed, request.loras, index * request.steps, total)
            for sub, image in enumerate(images):
                params = {
                    **run.values(prompt, seed),
                    "kind": "image",
                    "user_prompt": request.prompt,
                    "index": index,
                    "width": image.width,
                    "height": image.height,
                    "plugin": self.name,
                    "base_model": f"ComfyUI workflow {workflow_name}",
                    "workflow": workflow_name,
                    "loras": lora_summary(request.loras),
                    "character_id": request.character_id,
                    "trigger_word": request.trigger_word,
                    "add_trigger_word": request.add_trigger_word,
                    "size_note": note,
                    "job_id": ctx.job_id,
                    "comfyui_prompt_id": prompt_id,
                }
                artifact = save_output(ctx, image.convert("RGB"), f"{index:02d}-{sub}-{seed}", params)
                artifacts.append(artifact.id)
            seeds.append(seed)
        return {"images": len(artifacts), "artifact_ids": artifacts, "seeds": seeds, "workflow": workflow_name}

    def _grid(
        self, ctx: JobContext, run: _PromptRunner, request: ImageRequest, workflow_name: str, note: str | None
    ) -> dict[str, Any]:
        spec = request.grid
        assert spec is not None
        cells = len(spec.prompts) * len(spec.seeds) * len(spec.columns)
        prompt_ids: list[str] = []

        def render(cell: GridCell, index: int, count: int) -> Image.Image:
            prompt = with_trigger_word(cell.prompt, request.trigger_word, request.add_trigger_word)
            images, prompt_id = run.render(prompt, cell.seed, cell.loras, index * request.steps, count * request.steps)
            prompt_ids.append(prompt_id)
            return images[0].convert("RGB")

        grid = render_grid(spec, render, request)
        common = {
            "width": run.size[0],
            "height": run.size[1],
            "steps": request.steps,
            "guidance": request.guidance,
            "plugin": self.name,
            "base_model": f"ComfyUI workflow {workflow_name}",
            "workflow": workflow_name,
            "character_id": request.character_id,
            "job_id": ctx.job_id,
        }
        params = {**grid_params(spec, request, common, grid.size), "size_note": note, "comfyui_prompt_ids": prompt_ids}
        artifact = save_output(ctx, grid, "grid", params)
        ctx.log(f"rendered a comparison grid of {cells} images")
        return {"images": 1, "grid": True, "cells": cells, "artifact_ids": [artifact.id], "workflow": workflow_name}


class _PromptRunner:
    """Fills the template for one image, queues it, follows it and fetches what it saved."""

    def __init__(
        self,
        plugin: ComfyUIGenerator,
        ctx: JobContext,
        client: ComfyUIClient,
        template: Graph,
        request: ImageRequest,
        size: tuple[int, int],
    ) -> None:
        self.ctx, self.client, self.template, self.request, self.size = ctx, client, template, request, size
        self.timeout = plugin.config.timeout_seconds
        self.ws: Any = None

    def values(self, prompt: str, seed: int) -> dict[str, Any]:
        request = self.request
        return {"prompt": prompt, "seed": seed, "steps": request.steps, "guidance": request.guidance,
                "width": self.size[0], "height": self.size[1]}  # fmt: skip

    def render(
        self, prompt: str, seed: int, loras: list[LoraRef], offset: int, total: int
    ) -> tuple[list[Image.Image], str]:
        self.ctx.raise_if_cancelled()
        steps = self.request.steps
        values = {**self.values(prompt, seed), "filename_prefix": f"isengard/{self.ctx.job_id}"}
        graph = fill_workflow(self.template, values, [(lora_name_for_comfyui(r), r.weight) for r in loras])

        def on_progress(value: int, maximum: int) -> None:
            # Progress is per sampler; scale it onto this image's share of the job.
            done = offset + round(value * steps / max(1, maximum))
            self.ctx.report_progress(min(done, total), total, stage="generating")

        prompt_id = str(uuid.uuid4())
        self.client.queue_prompt(graph, prompt_id)
        self.ctx.log("queued on ComfyUI", prompt_id=prompt_id)
        outputs = follow_prompt(
            self.ws, self.client, self.ctx, prompt_id, deadline=time.monotonic() + self.timeout, on_progress=on_progress
        )
        if not outputs:
            raise ComfyUIError("the workflow finished without saving an image")
        return [self.client.fetch_image(output) for output in outputs], prompt_id
