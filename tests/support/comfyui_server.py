"""A small ComfyUI stand-in that speaks its HTTP and websocket protocol (0.3.64) for tests, since CI cannot run
ComfyUI itself. What a client can observe is what ComfyUI does:
- `POST /prompt` validates as ComfyUI does (tests/support/comfyui_nodes.py): an unknown node type is a top-level
  `invalid_prompt` (400, empty node_errors); missing required inputs, wrong link types, numbers out of bounds and
  values not in a choice list (samplers, schedulers, model files, LoRAs) are node errors;
- one prompt runs at a time, others wait in its queue (`GET /queue`); `POST /queue {"delete": [ids]}` removes waiting
  prompts; `POST /interrupt {"prompt_id"}` interrupts that prompt only if it is the running one;
- `GET /object_info[/<node>]` with the current choice lists, `GET /models` and `GET /models/<folder>`; LoRAs are the
  files under its LoRA folder now (new files are seen without a restart);
- running a prompt sends the documented websocket messages and writes a real PNG per SaveImage (its colour derived
  from everything upstream, so different prompts, seeds and LoRAs give different images).
Failures can be injected per node class.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.support.comfyui_nodes import node_specs, validate_prompt
from tests.support.live_server import serve_in_thread

SAMPLER_NODES = {"KSampler", "SamplerCustomAdvanced"}
LATENT_NODES = {"EmptySD3LatentImage", "EmptyFlux2LatentImage"}
# What a FLUX.1-dev install has in its model folders (the shipped workflow's files).
FLUX_MODELS = {
    "diffusion_models": ["flux1-dev.safetensors"],
    "text_encoders": ["clip_l.safetensors", "t5xxl_fp16.safetensors"],
    "vae": ["ae.safetensors"],
    "checkpoints": [],
}
# What the FLUX.2 [klein] workflows load (ComfyUI's repackaged files).
KLEIN_MODELS = {
    "diffusion_models": ["flux-2-klein-base-4b.safetensors", "flux-2-klein-base-9b.safetensors"],
    "text_encoders": ["qwen_3_4b.safetensors", "qwen_3_8b.safetensors"],
    "vae": ["flux2-vae.safetensors"],
}


@dataclass
class FakeComfyUI:
    loras_dir: Path
    output_dir: Path
    step_seconds: float = 0.01
    fail_node_type: str | None = None
    models: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in FLUX_MODELS.items()})
    prompts: list[dict[str, Any]] = field(default_factory=list)  # every accepted POST /prompt body
    interrupts: list[str] = field(default_factory=list)  # every POST /interrupt, whether it interrupted or not
    deleted: list[str] = field(default_factory=list)  # prompts removed from the queue before they ran
    executed: list[str] = field(default_factory=list)  # prompts that started running, in order
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    sockets: dict[str, WebSocket] = field(default_factory=dict)
    pending: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)  # number, id, client, graph
    running: str | None = None
    running_entry: tuple[int, str, str, dict[str, Any]] | None = None
    interrupt_flag: bool = False
    url: str = ""
    _wake: asyncio.Event | None = None
    _executor: asyncio.Task[None] | None = None

    # --- Models and validation as ComfyUI does it ---------------------------------------------------------------
    def lora_names(self) -> list[str]:
        return sorted(p.relative_to(self.loras_dir).as_posix() for p in self.loras_dir.rglob("*.safetensors"))

    def folder(self, name: str) -> list[str] | None:
        if name == "loras":
            return self.lora_names()
        return sorted(self.models[name]) if name in self.models else None

    def specs(self) -> dict[str, Any]:
        return node_specs(lambda name: self.folder(name) or [])

    # --- Execution --------------------------------------------------------------------------------------------
    async def send(self, client_id: str, kind: str, data: dict[str, Any]) -> None:
        ws = self.sockets.get(client_id)
        if ws is not None:
            try:
                await ws.send_text(json.dumps({"type": kind, "data": data}))
            except Exception:
                self.sockets.pop(client_id, None)

    def _order(self, graph: dict[str, Any]) -> list[str]:
        done: list[str] = []

        def visit(node_id: str) -> None:
            if node_id in done:
                return
            for value in graph[node_id].get("inputs", {}).values():
                if isinstance(value, list) and len(value) == 2:
                    visit(str(value[0]))
            done.append(node_id)

        for node_id in graph:
            visit(node_id)
        return done

    @staticmethod
    def _steps(graph: dict[str, Any], sampler: dict[str, Any]) -> int:
        """A KSampler's own steps; a custom sampler's come from its sigmas (one step per interval)."""
        if "steps" in sampler["inputs"]:
            return int(sampler["inputs"]["steps"])
        return int(graph[str(sampler["inputs"]["sigmas"][0])]["inputs"]["steps"])

    def _render(self, graph: dict[str, Any], node_id: str) -> Image.Image:
        """An image whose colour hashes everything upstream of the SaveImage node (prompt, seed, LoRAs...)."""
        latent = next((n for n in graph.values() if n["class_type"] in LATENT_NODES), None)
        width = int(latent["inputs"]["width"]) if latent else 64
        height = int(latent["inputs"]["height"]) if latent else 64
        upstream = {k: graph[k] for k in self._order({k: v for k, v in graph.items()}) if k != node_id}
        digest = hashlib.sha256(json.dumps(upstream, sort_keys=True).encode()).digest()
        image = Image.new("RGB", (width, height), tuple(digest[:3]))
        ImageDraw.Draw(image).rectangle((0, 0, width // 2, height // 2), fill=tuple(digest[3:6]))
        return image

    async def run_queue(self) -> None:
        """One prompt at a time, in the order they were queued, as ComfyUI's prompt worker does."""
        assert self._wake is not None
        while True:
            while not self.pending:
                self._wake.clear()
                await self._wake.wait()
            entry = self.pending.pop(0)
            self.running_entry = entry
            await self.execute(entry[1], entry[2], entry[3])
            self.running_entry = None

    async def execute(self, prompt_id: str, client_id: str, graph: dict[str, Any]) -> None:
        self.running, self.interrupt_flag = prompt_id, False
        self.executed.append(prompt_id)
        outputs: dict[str, Any] = {}
        status = "success"
        await self.send(client_id, "execution_start", {"prompt_id": prompt_id, "timestamp": int(time.time() * 1000)})
        await self.send(client_id, "execution_cached", {"nodes": [], "prompt_id": prompt_id})
        try:
            for node_id in self._order(graph):
                node = graph[node_id]
                if self.interrupt_flag:
                    await self.send(
                        client_id,
                        "execution_interrupted",
                        {"prompt_id": prompt_id, "node_id": node_id, "node_type": node["class_type"], "executed": []},
                    )
                    status = "error"
                    break
                await self.send(
                    client_id, "executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}
                )
                # 0.3.64 also reports every node's state around it; clients must let messages they do not use pass.
                await self.send(
                    client_id,
                    "progress_state",
                    {"prompt_id": prompt_id, "nodes": {node_id: {"state": "running", "node_id": node_id,
                                                                 "prompt_id": prompt_id}}},
                )  # fmt: skip
                if node["class_type"] == self.fail_node_type:
                    await self.send(
                        client_id,
                        "execution_error",
                        {
                            "prompt_id": prompt_id,
                            "node_id": node_id,
                            "node_type": node["class_type"],
                            "executed": [],
                            "exception_message": "CUDA out of memory. Tried to allocate 2.00 GiB",
                            "exception_type": "torch.OutOfMemoryError",
                            "traceback": ["..."],
                            "current_inputs": {},
                            "current_outputs": {},
                        },
                    )
                    status = "error"
                    break
                if node["class_type"] in SAMPLER_NODES:
                    steps = self._steps(graph, node)
                    for step in range(1, steps + 1):
                        if self.interrupt_flag:
                            break
                        await asyncio.sleep(self.step_seconds)
                        await self.send(
                            client_id,
                            "progress",
                            {"value": step, "max": steps, "prompt_id": prompt_id, "node": node_id},
                        )
                if node["class_type"] == "SaveImage" and not self.interrupt_flag:
                    image = self._render(graph, node_id)
                    prefix = str(node["inputs"].get("filename_prefix", "ComfyUI"))
                    subfolder, _, stem = prefix.rpartition("/")
                    name = f"{stem}_{len(list(self.output_dir.rglob('*.png'))) + 1:05d}_.png"
                    target = self.output_dir / subfolder / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    image.save(target, format="PNG")
                    result = {"images": [{"filename": name, "subfolder": subfolder, "type": "output"}]}
                    outputs[node_id] = result
                    await self.send(
                        client_id,
                        "executed",
                        {"node": node_id, "display_node": node_id, "output": result, "prompt_id": prompt_id},
                    )
            else:
                await self.send(
                    client_id, "execution_success", {"prompt_id": prompt_id, "timestamp": int(time.time() * 1000)}
                )
        finally:
            self.history[prompt_id] = {
                "prompt": [0, prompt_id, graph, {}, list(outputs)],
                "outputs": outputs,
                "status": {"status_str": status, "completed": status == "success", "messages": []},
                "meta": {node_id: {"node_id": node_id, "display_node": node_id} for node_id in outputs},
            }
            self.running = None
            # Written after the history entry, as ComfyUI does: the reliable end of a prompt.
            await self.send(client_id, "executing", {"node": None, "prompt_id": prompt_id})

    # --- Routes -----------------------------------------------------------------------------------------------
    def app(self) -> Starlette:
        def same_origin(request: Request | WebSocket) -> bool:
            origin = request.headers.get("origin")
            return origin is None or origin.split("://", 1)[-1] == request.headers.get("host")

        async def system_stats(request: Request) -> Response:
            return JSONResponse(
                {"system": {"os": "posix", "comfyui_version": "0.3.64", "python_version": "3.11"}, "devices": []}
            )

        def refused(error: dict[str, Any], node_errors: dict[str, Any]) -> Response:
            return JSONResponse({"error": error, "node_errors": node_errors}, status_code=400)

        async def post_prompt(request: Request) -> Response:
            if not same_origin(request):
                return Response(status_code=403)
            body = await request.json()
            graph = body.get("prompt")
            if not isinstance(graph, dict):
                return refused({"type": "no_prompt", "message": "No prompt provided", "details": "",
                                "extra_info": {}}, {})  # fmt: skip
            error, node_errors = validate_prompt(graph, self.specs())
            if error is not None:
                return refused(error, {})
            if node_errors:
                return refused({"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed "
                                "validation", "details": "", "extra_info": {}}, node_errors)  # fmt: skip
            prompt_id = str(body.get("prompt_id") or uuid.uuid4())
            self.prompts.append(body)
            number = len(self.prompts)
            self.pending.append((number, prompt_id, str(body.get("client_id")), graph))
            if self._executor is None:
                self._wake = asyncio.Event()
                self._executor = asyncio.get_running_loop().create_task(self.run_queue())
            assert self._wake is not None
            self._wake.set()
            return JSONResponse({"prompt_id": prompt_id, "number": number, "node_errors": {}})

        async def interrupt(request: Request) -> Response:
            body = await request.json() if await request.body() else {}
            wanted = body.get("prompt_id")
            self.interrupts.append(str(wanted))
            # ComfyUI: "Prompt <id> is not currently running, skipping interrupt" for any other prompt.
            if self.running is not None and wanted in (None, self.running):
                self.interrupt_flag = True
            return Response(status_code=200)

        def queue_item(entry: tuple[int, str, str, dict[str, Any]]) -> list[Any]:
            return [entry[0], entry[1], entry[3], {"client_id": entry[2]}, []]

        async def get_queue(request: Request) -> Response:
            running = [queue_item(self.running_entry)] if self.running_entry is not None else []
            return JSONResponse(
                {"queue_running": running, "queue_pending": [queue_item(entry) for entry in self.pending]}
            )

        async def post_queue(request: Request) -> Response:
            body = await request.json()
            if body.get("clear"):
                self.deleted += [entry[1] for entry in self.pending]
                self.pending.clear()
            for prompt_id in body.get("delete", []):
                kept = [entry for entry in self.pending if entry[1] != prompt_id]
                if len(kept) != len(self.pending):
                    self.deleted.append(prompt_id)
                self.pending[:] = kept
            return Response(status_code=200)

        async def object_info(request: Request) -> Response:
            specs = self.specs()
            node = request.path_params.get("node")
            if node is None:
                return JSONResponse(specs)
            return JSONResponse({node: specs[node]} if node in specs else {})

        async def model_folders(request: Request) -> Response:
            return JSONResponse(sorted([*self.models, "loras"]))

        async def model_files(request: Request) -> Response:
            files = self.folder(request.path_params["folder"])
            return JSONResponse(files) if files is not None else Response(status_code=404)

        async def history(request: Request) -> Response:
            prompt_id = request.path_params["prompt_id"]
            return JSONResponse({prompt_id: self.history[prompt_id]} if prompt_id in self.history else {})

        async def view(request: Request) -> Response:
            root = self.output_dir.resolve()
            path = (root / request.query_params.get("subfolder", "") / request.query_params["filename"]).resolve()
            if root not in path.parents or not path.is_file():
                return Response(status_code=404)
            return Response(path.read_bytes(), media_type="image/png")

        async def ws_endpoint(websocket: WebSocket) -> None:
            if not same_origin(websocket):
                await websocket.close(code=1008)
                return
            await websocket.accept()
            client_id = websocket.query_params.get("clientId") or uuid.uuid4().hex
            self.sockets[client_id] = websocket
            await websocket.send_text(
                json.dumps(
                    {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id}}
                )
            )
            try:
                while True:
                    await websocket.receive_text()
            except WebSocketDisconnect:
                self.sockets.pop(client_id, None)

        routes = []
        for prefix in ("", "/api"):  # every route also answers under /api/
            routes += [
                Route(f"{prefix}/system_stats", system_stats),
                Route(f"{prefix}/prompt", post_prompt, methods=["POST"]),
                Route(f"{prefix}/interrupt", interrupt, methods=["POST"]),
                Route(f"{prefix}/queue", get_queue, methods=["GET"]),
                Route(f"{prefix}/queue", post_queue, methods=["POST"]),
                Route(f"{prefix}/object_info", object_info),
                Route(f"{prefix}/object_info/{{node}}", object_info),
                Route(f"{prefix}/models", model_folders),
                Route(f"{prefix}/models/{{folder}}", model_files),
                Route(f"{prefix}/history/{{prompt_id}}", history),
                Route(f"{prefix}/view", view),
            ]
        routes.append(WebSocketRoute("/ws", ws_endpoint))
        return Starlette(routes=routes)


@contextmanager
def running_comfyui(loras_dir: Path, output_dir: Path, **options: Any) -> Iterator[FakeComfyUI]:
    """Serve a FakeComfyUI on 127.0.0.1 in a background thread for the duration of the block."""
    fake = FakeComfyUI(loras_dir=loras_dir, output_dir=output_dir, **options)
    with serve_in_thread(fake.app(), start_timeout=10, lifespan="off", ws="websockets-sansio") as url:
        fake.url = url
        yield fake
