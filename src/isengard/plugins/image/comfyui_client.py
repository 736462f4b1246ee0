"""A small synchronous client of ComfyUI's server protocol (0.3.x) and the loop that follows one prompt.

Protocol: open `/ws?clientId=C`, `POST /prompt {"prompt", "client_id", "prompt_id"}`, follow `progress` /
`executing` / `executed` / `execution_*` messages for our prompt id until `executing` with a null node (the reliable
end), fetch each saved image through `/view`. ComfyUI runs one prompt at a time: stopping a prompt that still waits
in its queue is `POST /queue {"delete": [id]}`; `POST /interrupt {"prompt_id"}` stops only the running one (others
are skipped). Every network step has a timeout, so a server that goes away fails the job instead of hanging it.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from PIL import Image

from isengard.plugins.api import JobCancelled, JobContext, PluginError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 60.0
POLL_SECONDS = 0.5  # how often a quiet websocket is checked for a cancel request
INTERRUPT_GRACE_SECONDS = 10.0


class ComfyUIError(PluginError):
    pass


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

    def _get_json(self, path: str) -> Any:
        try:
            response = self.http.get(path)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        return response.json()

    def object_info(self, node_type: str) -> dict[str, Any] | None:
        """The server's description of a node type (inputs with their current choice lists), None if unknown."""
        info = self._get_json(f"/object_info/{quote(node_type, safe='')}")
        spec = info.get(node_type) if isinstance(info, dict) else None
        return spec if isinstance(spec, dict) else None

    def models(self, folder: str) -> list[str]:
        """The files of one model folder (`loras`, `vae`, ...) as the server lists them now."""
        files = self._get_json(f"/models/{quote(folder, safe='')}")
        return [str(name) for name in files] if isinstance(files, list) else []

    def queue_state(self) -> tuple[set[str], set[str]]:
        """(running, pending) prompt ids of the server's queue."""
        body = self._get_json("/queue")

        def ids(items: Any) -> set[str]:
            return {str(item[1]) for item in items or [] if isinstance(item, list) and len(item) > 1}

        return ids(body.get("queue_running")), ids(body.get("queue_pending"))

    def interrupt(self, prompt_id: str) -> None:
        try:
            self.http.post("/interrupt", json={"prompt_id": prompt_id}, timeout=CONNECT_TIMEOUT)
        except httpx.HTTPError as exc:
            log.warning("could not interrupt ComfyUI", extra={"prompt_id": prompt_id, "error": str(exc)})

    def delete_queued(self, prompt_id: str) -> None:
        try:
            self.http.post("/queue", json={"delete": [prompt_id]}, timeout=CONNECT_TIMEOUT)
        except httpx.HTTPError as exc:
            log.warning("could not remove a prompt from ComfyUI's queue", extra={"prompt_id": prompt_id,
                                                                                 "error": str(exc)})  # fmt: skip

    def stop(self, prompt_id: str) -> bool:
        """Stop our prompt wherever it is: removed while it waits, interrupted while it runs.

        True when it was running (an `execution_interrupted` message will follow), False when it never will run."""
        try:
            running, pending = self.queue_state()
            if prompt_id in pending:
                self.delete_queued(prompt_id)
                running, pending = self.queue_state()  # it may have started between the two requests
        except ComfyUIError as exc:
            log.warning("could not read ComfyUI's queue", extra={"prompt_id": prompt_id, "error": str(exc)})
            running = {prompt_id}
        if prompt_id in running:
            self.interrupt(prompt_id)
            return True
        return False

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
    ws: Any,
    client: ComfyUIClient,
    ctx: JobContext,
    prompt_id: str,
    *,
    deadline: float,
    on_progress: Callable[[int, int], None],
) -> list[dict[str, Any]]:
    """Read websocket messages until our prompt ends; return the saved images it reported."""
    images: list[dict[str, Any]] = []
    interrupted_at: float | None = None
    while True:
        now = time.monotonic()
        if now > deadline:
            client.stop(prompt_id)
            raise ComfyUIError("ComfyUI did not finish the prompt in time (ISENGARD_COMFYUI_TIMEOUT_SECONDS)")
        if interrupted_at is None and ctx.is_cancelled():
            if not client.stop(prompt_id):
                ctx.raise_if_cancelled()  # it was still waiting in ComfyUI's queue and is gone from it now
                raise JobCancelled("cancelled")
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
        if data.get("prompt_id") != prompt_id:
            continue
        if kind == "progress":
            on_progress(int(data.get("value", 0)), int(data.get("max", 1)))
        elif kind == "executed":
            images += [
                img for img in (data.get("output") or {}).get("images", []) if img.get("type", "output") == "output"
            ]
        elif kind == "execution_error":
            raise ComfyUIError(
                f"ComfyUI failed in node {data.get('node_id')} ({data.get('node_type')}): "
                f"{data.get('exception_type', '')}: {data.get('exception_message', '').strip()}"
            )
        elif kind == "execution_interrupted":
            if interrupted_at is not None:
                ctx.raise_if_cancelled()
                raise JobCancelled("cancelled")
            raise ComfyUIError("the prompt was interrupted on the ComfyUI server")
        elif kind == "executing" and data.get("node") is None:
            return images
