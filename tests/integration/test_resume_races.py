"""A stopped run resumed and deleted at the same moment gets one answer, never a 500 and never both; a run's
images cannot be deleted while it will read them, and a run whose images went since it stopped is not resumed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from isengard.config import Settings
from tests.integration.queue_support import live_api
from tests.support.training_setup import SMALL, png

pytestmark = pytest.mark.databases

RACES = 10


@pytest.fixture()
def api(settings: Settings) -> Iterator[httpx.Client]:
    with live_api(settings) as base, httpx.Client(base_url=base, timeout=60) as client:
        yield client


def _character(client: httpx.Client, images: int = 2) -> tuple[str, list[str]]:
    character_id = client.post("/api/characters", json={"name": "Racer", "trigger_word": "zxq"}).json()["id"]
    files = [("files", (f"p{i}.png", png(i), "image/png")) for i in range(images)]
    results = client.post(f"/api/characters/{character_id}/images", files=files).json()["results"]
    image_ids = [result["image"]["id"] for result in results]
    for image_id in image_ids:
        assert client.patch(f"/api/images/{image_id}", json={"caption": "a photo of [trigger]"}).status_code == 200
    return character_id, image_ids


def _stopped_run(client: httpx.Client, settings: Settings, character_id: str) -> str:
    """A cancelled training run with a complete checkpoint on disk, as a run stopped mid-way leaves it."""
    job_id: str = client.post("/api/training", json={"character_id": character_id, "config": SMALL}).json()["id"]
    assert client.post(f"/api/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    checkpoint = settings.data_path / "loras" / character_id / job_id / "checkpoints" / "step-000005"
    checkpoint.mkdir(parents=True)
    (checkpoint / "COMPLETE").write_text("")
    return job_id


def _race(client: httpx.Client, job_id: str) -> tuple[int, int]:
    start = threading.Barrier(2)
    answers: dict[str, int] = {}

    def call(name: str, method: str, path: str) -> None:
        start.wait()
        answers[name] = client.request(method, path).status_code

    threads = [
        threading.Thread(target=call, args=("resume", "POST", f"/api/jobs/{job_id}/resume")),
        threading.Thread(target=call, args=("delete", "DELETE", f"/api/jobs/{job_id}")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers["resume"], answers["delete"]


def test_resume_against_delete_gives_one_answer(api: httpx.Client, settings: Settings) -> None:
    character_id, _images = _character(api)
    for _ in range(RACES):
        job_id = _stopped_run(api, settings, character_id)
        resume, delete = _race(api, job_id)
        # Exactly one wins: the resume (the delete is refused), or the delete (the resume finds nothing to resume).
        assert (resume, delete) in {(200, 409), (409, 204), (404, 204)}, (resume, delete)
        status = api.get(f"/api/jobs/{job_id}")
        if resume == 200:
            assert status.json()["status"] == "queued"
            api.post(f"/api/jobs/{job_id}/cancel")
        else:
            assert status.status_code == 404


def test_a_runs_images_are_kept_while_it_may_read_them(api: httpx.Client, settings: Settings) -> None:
    character_id, images = _character(api, 3)
    job_id = api.post("/api/training", json={"character_id": character_id, "config": SMALL}).json()["id"]
    refused = api.delete(f"/api/images/{images[0]}")
    assert refused.status_code == 409 and "reads this image" in refused.json()["detail"]
    assert api.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    checkpoint = Path(settings.data_path / "loras" / character_id / job_id / "checkpoints" / "step-000005")
    checkpoint.mkdir(parents=True)
    (checkpoint / "COMPLETE").write_text("")
    assert api.delete(f"/api/images/{images[0]}").status_code == 204  # the run has stopped
    resume = api.post(f"/api/jobs/{job_id}/resume")
    assert resume.status_code == 409 and "deleted since it stopped" in resume.json()["detail"]
    assert api.get(f"/api/jobs/{job_id}").json()["status"] == "cancelled"
