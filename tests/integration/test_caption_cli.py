"""`isengard caption` and `isengard train --auto-caption` over real HTTP: a uvicorn server and a worker in threads,
the tiny Qwen3-VL captioning, the CLI following with a progress bar."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from isengard.api.app import create_app
from isengard.cli import main as cli_main
from isengard.cli.client import IsengardClient
from isengard.config import Settings
from isengard.plugins.caption.qwen_vl_tiny import TINY_DIRNAME, ensure_tiny_vlm
from tests.integration.queue_support import worker_thread
from tests.support.live_server import serve_in_thread
from tests.support.training_setup import photo_folder, png


@pytest.fixture()
def api_url(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import torch

    shutil.copytree(ensure_tiny_vlm(tmp_path_factory.mktemp("models")), settings.data_path / "models" / TINY_DIRNAME)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only wait for each other on a busy machine
    with serve_in_thread(create_app(settings)) as url, worker_thread(settings, "cli-worker"):
        yield url
    torch.set_num_threads(previous)


def _captions(api_url: str) -> list[str]:
    client = IsengardClient(api_url)
    try:
        items = client.request("GET", "/api/images", params={"limit": 50})["items"]
        return [item["caption"] for item in sorted(items, key=lambda item: item["original_name"])]
    finally:
        client.close()


def test_caption_command_captions_every_image_with_a_progress_bar(
    api_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["caption", "--character", "Nobody", "--api", api_url]) == 1
    assert "no character named 'Nobody'" in capsys.readouterr().err
    client = IsengardClient(api_url)
    character = client.create_character("Cli Caption", "clicap")
    paths = []
    for index in range(3):
        paths.append(tmp_path / f"p{index}.png")
        paths[-1].write_bytes(png(index))
    images = [result["image"] for result in client.upload_images(character["id"], paths)]
    client.set_caption(images[0]["id"], "[trigger], kept as written")
    client.close()

    code = cli_main(["caption", "--character", "cli caption", "--prefix", "photo of", "--api", api_url])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "2/2" in out.err  # the bar counts images and reached the end
    assert "captioned 2 image(s); kept 1 existing caption(s)" in out.out
    captions = _captions(api_url)
    assert captions[0] == "[trigger], kept as written"
    assert all(caption.startswith("photo of [trigger], ") for caption in captions[1:])
    assert all(f"/2: {caption}" in out.out for caption in captions[1:])  # each caption is shown

    # "Only empty" with nothing left to do is not a failure, and says why.
    assert cli_main(["caption", "--character", "cli caption", "--only-empty", "--api", api_url]) == 0
    assert "nothing to caption: every image already has a caption" in capsys.readouterr().out


def test_train_auto_caption_captions_images_without_a_caption_first(
    api_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = photo_folder(tmp_path / "photos")
    for name in ("p1.txt", "p2.txt"):  # the CLI's default caption: a placeholder, captioned like an empty one
        (photos / name).write_text("a photo of [trigger]")
    code = cli_main(["train", "--character", "Auto Person", "--images", str(photos), "--steps", "4", "--rank", "4",
                     "--auto-caption", "--suffix", "auto", "--api", api_url])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    captions = _captions(api_url)
    assert captions[0] == "close-up of [trigger] smiling"
    assert all(caption.startswith("[trigger], ") and caption.endswith(", auto") for caption in captions[1:])
    client = IsengardClient(api_url)
    jobs = client.request("GET", "/api/jobs")["items"]
    client.close()
    assert [(job["kind"], job["status"]) for job in reversed(jobs)] == [
        ("caption", "succeeded"),
        ("training", "succeeded"),
    ]
