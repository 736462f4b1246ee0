"""Image generation through a ComfyUI server (ISENGARD_COMFYUI_URL).

Protocol (as ComfyUI 0.3.x speaks it): open `/ws?clientId=C`, `POST /prompt {"prompt", "client_id", "prompt_id"}`,
follow `progress` / `executing` / `executed` / `execution_*` messages for our prompt id until `executing` with a
null node (the reliable end), fetch each saved image through `/view`, cancel with `POST /interrupt {"prompt_id"}`.
Every network step has a timeout, so a server that goes away fails the job instead of hanging it.

LoRAs: ComfyUI must see Isengard's LoRA folder. Add to ComfyUI's `extra_model_paths.yaml`:

    isengard:
      base_path: /path/to/isengard/data
      loras: loras

A LoRA is then named by its path relative to `data/loras` (e.g. `<character_id>/<job_id>/lora.safetensors`).
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from PIL import Image
from pydantic import BaseModel

from isengard.domain import LoraRef
from isengard.plugins.api import Capability, JobCancelled, JobContext, PluginError
from isengard.plugins.image.comfyui_workflow import available_workflows, fill_workflow, load_workflow
from isengard.plugins.image.interface import ImagePlugin
from isengard.plugins.image.outputs import save_output
from isengard.plugins.image.request import ImageRequest, image_seeds, lora_summary, snap_size, with_trigger_word

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 60.0
POLL_SECONDS = 0.5  # how often a quiet websocket is checked for a cancel request
INTERRUPT_GRACE_SECONDS = 10.0


class ComfyUIError(PluginError):
    pass


def lora_name_for_comfyui(ref: LoraRef) -> str:
    """The name ComfyUI knows a LoRA by: its path relative to the data tree's `loras` folder."""
    path = PurePosixPath(ref.path)
    if path.parts[:1] != ("loras",) or ".." in path.parts or len(path.parts) < 2:
        raise ComfyUIError(
            f"LoRA {ref.name or ref.lora_id} is not under the data folder's loras/, so ComfyUI cannot see it"
        )
    return str(PurePosixPath(*path.parts[1:]))


def describe_node_errors(body: dict[str, Any]) -> str:
    """One readable sentence from a 400 answer of POST /prompt (naming the node and input at fault)."""
    parts = []
    for node_id, entry in (body.get("node_errors") or {}).items():
        for error in entry.get("errors", []):
            input_name = (error.get("extra_info") or {}).get("input_name")
            where = f"node {node_id} ({entry.get('class_type', '?')})" + (
                f", input '{input_name}'" if input_name else ""
            )
            parts.append(f"{where}: {error.get('message', '')} {error.get('details', '')}".strip())
    if not parts:
        error = body.get("error") or {}
        parts.append(f"{error.get('message', 'invalid prompt')} {error.get('details', '')}".strip())
    return "ComfyUI refused the workflow: " + "; ".join(parts)


class ComfyUIClient:
    """A small synchronous client of one ComfyUI server for one job."""

    def __init__(self, base_url: str, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = uuid.uuid4().hex
        self.http = httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT))

    def close(self) -> None:
        self.http.close()

    def _unreachable(self, exc: Exception) -> ComfyUIError:
        return ComfyUIError(f"ComfyUI at {self.base_url} is not reachable: {type(exc).__name__}: {exc}")

    def system_stats(self) -> dict[str, Any]:
        try:
            response = self.http.get("/system_stats")
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return dict(response.json())

    def ws_url(self) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, f"{parts.path}/ws", f"clientId={self.client_id}", ""))

    @contextmanager
    def websocket(self) -> Iterator[Any]:
        from websockets.sync.client import connect

        try:
            # No Origin header: ComfyUI answers 403 when Origin and Host differ (unless started with CORS).
            ws = connect(self.ws_url(), open_timeout=CONNECT_TIMEOUT, max_size=64 * 1024 * 1024)
        except Exception as exc:  # refused, timed out, bad handshake: all mean unreachable
            raise self._unreachable(exc) from None
        try:
            yield ws
        finally:
            ws.close()

    def queue_prompt(self, graph: dict[str, Any], prompt_id: str) -> None:
        try:
            response = self.http.post(
                "/prompt", json={"prompt": graph, "client_id": self.client_id, "prompt_id": prompt_id}
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code == 400:
            try:
                body = response.json()
            except ValueError:
                body = {"error": {"message": response.text[:300]}}
            raise ComfyUIError(describe_node_errors(body))
        if response.status_code != 200:
            raise ComfyUIError(f"ComfyUI answered {response.status_code} to the prompt: {response.text[:300]}")

    def interrupt(self, prompt_id: str) -> None:
        try:
            self.http.post("/interrupt", json={"prompt_id": prompt_id}, timeout=CONNECT_TIMEOUT)
        except httpx.HTTPError as exc:
            log.warning("could not interrupt ComfyUI", extra={"prompt_id": prompt_id, "error": str(exc)})

    def fetch_image(self, image: dict[str, Any]) -> Image.Image:
        params = {
            "filename": image["filename"],
            "subfolder": image.get("subfolder", ""),
            "type": image.get("type", "output"),
        }
        try:
            response = self.http.get("/view", params=params)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ComfyUIError(f"could not fetch {image['filename']} from ComfyUI: {exc}") from None
        loaded = Image.open(io.BytesIO(response.content))
        loaded.load()
        return loaded


def follow_prompt(
    ws: Any, client: ComfyUIClient, ctx: JobContext, prompt_id: str, *, deadline: float, on_progress: Any
) -> list[dict[str, Any]]:
    """Read websocket messages until our prompt ends; return the saved images it reported."""
    images: list[dict[str, Any]] = []
    interrupted_at: float | None = None
    while True:
        now = time.monotonic()
        if now > deadline:
            client.interrupt(prompt_id)
            raise ComfyUIError("ComfyUI did not finish the prompt in time (ISENGARD_COMFYUI_TIMEOUT_SECONDS)")
        if interrupted_at is None and ctx.is_cancelled():
            client.interrupt(prompt_id)
            interrupted_at = now
        if interrupted_at is not None and now - interrupted_at > INTERRUPT_GRACE_SECONDS:
            ctx.raise_if_cancelled()  # the server never confirmed; stop waiting for it
        try:
            raw = ws.recv(timeout=POLL_SECONDS)
        except TimeoutError:
            continue
        except Exception as exc:
            raise ComfyUIError(f"lost the connection to ComfyUI: {type(exc).__name__}: {exc}") from None
        if isinstance(raw, bytes):
            continue  # binary frames are live previews
        message = json.loads(raw)
        kind, data = message.get("type"), message.get("data") or {}
        if data.get("prompt_id") not in (None, prompt_id):
            continue
        if kind == "progress" and data.get("prompt_id") == prompt_id:
            on_progress(int(data.get("value", 0)), int(data.get("max", 1)))
        elif kind == "executed" and data.get("prompt_id") == prompt_id:
            images += [
                img for img in (data.get("output") or {}).get("images", []) if img.get("type", "output") == "output"
            ]
        elif kind == "execution_error" and data.get("prompt_id") == prompt_id:
            raise ComfyUIError(
                f"ComfyUI failed in node {data.get('node_id')} ({data.get('node_type')}): "
                f"{data.get('exception_type', '')}: {data.get('exception_message', '').strip()}"
            )
        elif kind == "execution_interrupted" and data.get("prompt_id") == prompt_id:
            if interrupted_at is not None:
                ctx.raise_if_cancelled()
                raise JobCancelled("cancelled")
            raise ComfyUIError("the prompt was interrupted on the ComfyUI server")
        elif kind == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
            return images


class ComfyUIGenerator(ImagePlugin):
    name: ClassVar[str] = "comfyui"
    description: ClassVar[str] = "FLUX through a ComfyUI server, from API-format workflow templates"
    request_model: ClassVar[type[BaseModel]] = ImageRequest

    @property
    def url(self) -> str | None:
        return getattr(self.settings, "comfyui_url", None)

    @property
    def workflows_dir(self) -> Path | None:
        return getattr(self.settings, "comfyui_workflows_dir", None)

    def capabilities(self) -> Capability:
        if not self.url:
            return Capability(available=False, reason="no ComfyUI server configured: set ISENGARD_COMFYUI_URL")
        client = ComfyUIClient(self.url, timeout=CONNECT_TIMEOUT)
        try:
            stats = client.system_stats()
        except ComfyUIError as exc:
            return Capability(available=False, reason=str(exc))
        finally:
            client.close()
        version = (stats.get("system") or {}).get("comfyui_version")
        return Capability(
            available=True,
            details={
                "url": self.url,
                "version": version,
                "workflows": available_workflows(self.workflows_dir),
                "grid": False,
            },
        )

    def generate(self, ctx: JobContext, request: BaseModel) -> dict[str, Any]:
        assert isinstance(request, ImageRequest)
        if not self.url:
            raise ComfyUIError("no ComfyUI server configured: set ISENGARD_COMFYUI_URL")
        if request.grid is not None:
            raise ComfyUIError("the ComfyUI plugin does not render comparison grids; use the diffusers plugin")
        width, height, note = snap_size(request.width, request.height)
        if note:
            ctx.log(note, level="warning")
        workflow_name, template = load_workflow(request.workflow, self.workflows_dir)
        loras = [(lora_name_for_comfyui(ref), ref.weight) for ref in request.loras]
        prompt = with_trigger_word(request.prompt, request.trigger_word, request.add_trigger_word)
        planned_seeds = image_seeds(request)
        client = ComfyUIClient(self.url)
        artifacts, seeds = [], []
        try:
            with client.websocket() as ws:
                for index, seed in enumerate(planned_seeds):
                    ctx.raise_if_cancelled()
                    # One prompt per image with its own seed, so each image can be reproduced alone.
                    values = {
                        "prompt": prompt,
                        "seed": seed,
                        "steps": request.steps,
                        "guidance": request.guidance,
                        "width": width,
                        "height": height,
                        "filename_prefix": f"isengard/{ctx.job_id}",
                    }
                    prompt_id = str(uuid.uuid4())
                    images = self._run_prompt(
                        ctx, client, ws, fill_workflow(template, values, loras), prompt_id, index, request
                    )
                    if not images:
                        raise ComfyUIError(f"workflow '{workflow_name}' finished without saving an image")
                    for sub, image in enumerate(images):
                        params = {
                            **values,
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
                        params.pop("filename_prefix")
                        artifact = save_output(ctx, image.convert("RGB"), f"{index:02d}-{sub}-{seed}", params)
                        artifacts.append(artifact.id)
                    seeds.append(seed)
        finally:
            client.close()
        return {"images": len(artifacts), "artifact_ids": artifacts, "seeds": seeds, "workflow": workflow_name}

    def _run_prompt(
        self,
        ctx: JobContext,
        client: ComfyUIClient,
        ws: Any,
        graph: dict[str, Any],
        prompt_id: str,
        index: int,
        request: ImageRequest,
    ) -> list[Image.Image]:
        total = request.steps * request.num_images
        offset = index * request.steps

        def on_progress(value: int, maximum: int) -> None:
            # Progress is per sampler; scale it onto this image's share of the job.
            done = offset + round(value * request.steps / max(1, maximum))
            ctx.report_progress(min(done, total), total, stage="generating")

        client.queue_prompt(graph, prompt_id)
        ctx.log("queued on ComfyUI", prompt_id=prompt_id)
        timeout = float(getattr(self.settings, "comfyui_timeout_seconds", 3600.0))
        outputs = follow_prompt(
            ws, client, ctx, prompt_id, deadline=time.monotonic() + timeout, on_progress=on_progress
        )
        return [client.fetch_image(output) for output in outputs]
