"""A small HTTP client of Isengard's API for terminal commands: requests with readable errors, uploads, and
following a job live (server-sent events, with polling as the fallback) behind a tqdm progress bar.
"""

from __future__ import annotations

import argparse
import json
import logging
import mimetypes
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from isengard.domain import JobStatus

log = logging.getLogger(__name__)

DEFAULT_API = "http://127.0.0.1:8000"
FINAL_STATUSES = {status.value for status in JobStatus if status.is_final}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}


def default_api_url() -> str:
    """Where the commands look for a running Isengard: `ISENGARD_URL` (or the older `ISENGARD_API_URL`), else the
    address `isengard up` listens on in the same environment (`ISENGARD_HOST`, `ISENGARD_PORT`), else
    127.0.0.1:8000."""
    explicit = os.environ.get("ISENGARD_URL") or os.environ.get("ISENGARD_API_URL")
    if explicit:
        return explicit
    host = os.environ.get("ISENGARD_HOST", "").strip() or "127.0.0.1"
    if host in ("0.0.0.0", "::"):  # listening everywhere: this machine answers on loopback
        host = "127.0.0.1"
    port = os.environ.get("ISENGARD_PORT", "").strip() or "8000"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    """--api and --token of every command that talks to a running Isengard (defaults from the environment)."""
    parser.add_argument(
        "--api",
        default=default_api_url(),
        help=f"Isengard's URL (default: ISENGARD_URL, else http://ISENGARD_HOST:ISENGARD_PORT, else {DEFAULT_API})",
    )
    parser.add_argument("--token", default=os.environ.get("ISENGARD_API_TOKEN"), help="API token, if one is set")


class ApiError(Exception):
    """The API refused or failed a request; the message is its `detail`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{detail} (HTTP {status})")
        self.status = status
        self.detail = detail


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    detail = body.get("message") or body.get("detail") if isinstance(body, dict) else body
    return detail if isinstance(detail, str) else json.dumps(detail)[:500]


class IsengardClient:
    def __init__(
        self, base_url: str = DEFAULT_API, *, token: str | None = None, http: httpx.Client | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = http or httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=60.0)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(
                0,
                f"cannot reach the Isengard API at {self.http.base_url}: {exc}; start it with `isengard up`, or "
                "point the command at it with --api URL (or ISENGARD_URL=URL)",
            ) from None
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        return response.json() if response.content else None

    # Characters and images -----------------------------------------------------------------------------------

    def find_character(self, name: str) -> dict[str, Any] | None:
        for character in self.request("GET", "/api/characters"):
            if str(character.get("name", "")).casefold() == name.casefold():
                return dict(character)
        return None

    def create_character(self, name: str, trigger_word: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if trigger_word:
            body["trigger_word"] = trigger_word
        return dict(self.request("POST", "/api/characters", json=body))

    def upload_images(self, character_id: str, paths: list[Path], *, per_request: int = 20) -> list[dict[str, Any]]:
        """Upload in small batches; returns every file's result (stored, duplicate or rejected with a reason)."""
        results: list[dict[str, Any]] = []
        for start in range(0, len(paths), per_request):
            batch = paths[start : start + per_request]
            files = [
                ("files", (p.name, p.read_bytes(), mimetypes.guess_type(p.name)[0] or "application/octet-stream"))
                for p in batch
            ]
            try:
                response = self.http.post(f"/api/characters/{character_id}/images", files=files)
            except httpx.TransportError as exc:
                raise ApiError(0, f"upload failed: {exc}") from None
            if response.status_code >= 400 and response.status_code != 422:
                raise ApiError(response.status_code, _detail(response))
            results += response.json().get("results", [])
        return results

    def set_caption(self, image_id: str, caption: str) -> None:
        self.request("PATCH", f"/api/images/{image_id}", json={"caption": caption})

    # Jobs ----------------------------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/api/jobs/{job_id}"))

    def artifacts(self, job_id: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/api/jobs/{job_id}/artifacts"))

    def events(self, job_id: str, *, poll_seconds: float = 1.0) -> Iterator[dict[str, Any]]:
        """The job's events until it ends: SSE (resumed with Last-Event-ID after a drop), else polling."""
        last_id: str | None = None
        failures = 0
        while failures < 3:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                with self.http.stream(
                    "GET", f"/api/jobs/{job_id}/events", headers=headers, timeout=httpx.Timeout(60.0, read=None)
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise ApiError(response.status_code, _detail(response))
                    for event_id, data in _sse_messages(response.iter_lines()):
                        last_id = event_id or last_id
                        failures = 0
                        yield data
                        if data.get("type") == "status" and data.get("status") in FINAL_STATUSES:
                            return
            except (httpx.TransportError, httpx.StreamError) as exc:
                log.info("event stream dropped; reconnecting", extra={"job_id": job_id, "error": str(exc)})
            failures += 1
            if self.get_job(job_id)["status"] in FINAL_STATUSES:
                return
            time.sleep(min(5.0, poll_seconds * failures))
        yield from self._poll(job_id, poll_seconds)

    def _poll(self, job_id: str, poll_seconds: float) -> Iterator[dict[str, Any]]:
        while True:
            job = self.get_job(job_id)
            progress = job.get("progress") or {}
            if progress:
                yield {"type": "progress", **progress}
            if job["status"] in FINAL_STATUSES:
                yield {"type": "status", "status": job["status"], "message": job.get("error")}
                return
            time.sleep(poll_seconds)


def _sse_messages(lines: Iterator[str]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """Server-sent events as (id, decoded JSON data); comments and pings are skipped."""
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if not line:
            decoded = _json_or_none("\n".join(data)) if data else None
            if isinstance(decoded, dict):
                yield event_id, decoded
            event_id, data = None, []
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def run_following(command: str, client: IsengardClient, work: Callable[[IsengardClient], int]) -> int:
    """Run a command that queues a job and follows it: an API error is one line and exit 1; Ctrl-C stops following
    (the job keeps running) with exit 130; the client is closed either way."""
    try:
        return work(client)
    except ApiError as exc:
        print(f"isengard {command}: {exc.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopped following; the job keeps running (cancel it in the web UI or the API)", file=sys.stderr)
        return 130
    finally:
        client.close()


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


def follow_with_bar(
    client: IsengardClient,
    job_id: str,
    *,
    description: str = "job",
    on_event: Callable[[dict[str, Any]], None] | None = None,
    disable: bool = False,
    unit: str = "step",
) -> dict[str, Any]:
    """Show a job's progress as a tqdm bar (step, loss, ETA) until it ends; returns the finished job."""
    from tqdm import tqdm

    bar = tqdm(total=None, desc=description, unit=unit, disable=disable, dynamic_ncols=True)
    try:
        for event in client.events(job_id):
            if on_event is not None:
                on_event(event)
            kind = event.get("type")
            if kind == "progress" and event.get("total"):
                bar.total = int(event["total"])
                bar.n = int(event.get("step") or 0)
                postfix = {}
                loss = event.get("smoothed_loss", event.get("loss"))
                if loss is not None:
                    postfix["loss"] = f"{float(loss):.4f}"
                if event.get("eta_seconds") is not None:
                    postfix["eta"] = format_eta(event["eta_seconds"])
                if event.get("stage") and event.get("stage") not in {"training", "captioning"}:
                    postfix["stage"] = event["stage"]
                bar.set_postfix(postfix, refresh=False)
                bar.refresh()
            elif kind == "log" and event.get("level") in {"warning", "error"}:
                bar.write(f"{event['level']}: {event.get('message', '')}")
    finally:
        bar.close()
    return client.get_job(job_id)


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
