"""`isengard train` over real HTTP: a uvicorn server in a thread, a worker draining the queue, the CLI following."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from isengard.api.app import create_app
from isengard.cli import main as cli_main
from isengard.cli.client import IsengardClient, _sse_messages, format_eta
from isengard.config import Settings
from isengard.worker.main import run_worker
from tests.support.live_server import serve_in_thread
from tests.support.training_setup import photo_folder


@pytest.fixture()
def api_url(settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(settings)) as url:
        yield url


def test_sse_parsing_and_eta_format() -> None:
    lines = iter([": ping", "id: 1-0", "event: progress", 'data: {"type": "progress", "step": 3}', "", "data: x", ""])
    assert list(_sse_messages(lines)) == [("1-0", {"type": "progress", "step": 3})]
    assert format_eta(75) == "1:15" and format_eta(3725) == "1:02:05" and format_eta(None) == "?"


def test_train_command_uploads_submits_follows_and_reports(
    api_url: str, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = photo_folder(tmp_path / "photos")
    (photos / "notes.md").write_text("not an image")

    def drain_when_queued() -> None:
        client = httpx.Client(base_url=api_url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not client.get("/api/jobs").json()["total"]:
            time.sleep(0.1)
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            run_worker(settings, burst=True)
        finally:
            torch.set_num_threads(previous)

    worker = threading.Thread(target=drain_when_queued)
    worker.start()
    code = cli_main(["train", "--character", "Cli Person", "--images", str(photos), "--steps", "12", "--rank", "4",
                     "--base", "flux1-krea-dev", "--api", api_url])  # fmt: skip
    worker.join(timeout=120)
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "created character 'Cli Person'" in out.out
    assert "uploaded 3 new image(s)" in out.out
    assert "LoRA: loras/" in out.out and ".safetensors" in out.out
    assert "12/12" in out.err  # the progress bar reached the end

    client = IsengardClient(api_url)
    images = client.request("GET", "/api/images", params={"limit": 10})
    captions = sorted(image["caption"] for image in images["items"])
    assert captions == ["a photo of [trigger]", "a photo of [trigger]", "close-up of [trigger] smiling"]
    job = client.request("GET", "/api/jobs")["items"][0]
    assert job["status"] == "succeeded" and job["config"]["steps"] == 12 and job["config"]["rank"] == 4
    assert job["config"]["base"] == "flux1-krea-dev"
    # Running again for an existing character reuses it and reports the API's refusal readably.
    assert cli_main(["train", "--character", "cli person", "--steps", "0", "--api", api_url]) == 1
    assert "config.steps" in capsys.readouterr().err
    client.close()
