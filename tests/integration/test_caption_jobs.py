"""Caption jobs end to end on the tiny Qwen3-VL: the API queues them, a real worker captions through the real
`generate()` path, captions land in the database and the .txt beside each image, SSE shows each image, cancel stops
the job, existing captions survive unless the request says otherwise; bad requests get clear 4xx answers."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from isengard.api.app import create_app
from isengard.config import Settings
from isengard.domain import PluginKind
from isengard.models.locate import tiny_model_dir
from isengard.models.tiny import save_tiny_model
from isengard.plugins.caption.qwen_vl import QwenVLCaptioner
from isengard.plugins.caption.qwen_vl_tiny import TINY_DIRNAME, ensure_tiny_vlm
from isengard.plugins.image.diffusers_flux import DiffusersFluxGenerator
from isengard.worker.main import Worker, run_worker
from tests.image_samples import encode, photo
from tests.integration.queue_support import wait_for, worker_thread
from tests.integration.test_sse_events import sse_events

FAST = {"batch_size": 2, "max_new_tokens": 10, "max_image_pixels": 96 * 96}
HAND_WRITTEN = "[trigger], written by hand, on a balcony"


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny_vlm(tmp_path_factory.mktemp("models"))


@pytest.fixture()
def api(settings: Settings, tiny_vlm: Path) -> Any:
    shutil.copytree(tiny_vlm, settings.data_path / "models" / TINY_DIRNAME)
    with TestClient(create_app(settings)) as client:
        yield client


def _dataset(api: TestClient, count: int) -> tuple[str, list[str]]:
    character = api.post("/api/characters", json={"name": "Ada", "trigger_word": "adaxq"}).json()["id"]
    files = [("files", (f"{i}.jpg", encode(photo(i, (96, 128))), "image/jpeg")) for i in range(count)]
    response = api.post(f"/api/characters/{character}/images", files=files)
    assert response.status_code == 201, response.text
    return character, [result["image"]["id"] for result in response.json()["results"]]


def _caption_of(api: TestClient, image_id: str) -> str:
    return str(api.get(f"/api/images/{image_id}").json()["caption"])


def _caption_file(settings: Settings, character: str, image_id: str) -> str | None:
    matches = list((settings.data_path / "uploads" / character).glob(f"{image_id}*.txt"))
    return matches[0].read_text() if matches else None


def _events(api: TestClient, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    with api.stream("GET", f"/api/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        return [(kind, data) for _id, kind, data in sse_events(response)]  # type: ignore[arg-type]


def test_caption_job_through_the_queue_and_a_worker(api: TestClient, settings: Settings) -> None:
    plugins = api.get("/api/captions/plugins").json()
    qwen = next(plugin for plugin in plugins if plugin["name"] == "qwen-vl")
    assert qwen["capability"]["available"] and "batch_size" in qwen["config_schema"]["properties"]

    character, ids = _dataset(api, 3)
    assert api.patch(f"/api/images/{ids[0]}", json={"caption": HAND_WRITTEN}).status_code == 200
    # A placeholder caption ("a photo of [trigger]", the CLI's default) counts as empty: it is captioned too.
    assert api.patch(f"/api/images/{ids[1]}", json={"caption": "a photo of [trigger]"}).status_code == 200
    body = {"scope": "all", "style": {"prefix": "photo of"}, "config": FAST}
    response = api.post(f"/api/characters/{character}/captions/auto", json=body)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "caption" and job["status"] == "queued"
    assert job["config"]["images"] == 2 and job["config"]["kept"] == 1  # the hand-written caption is not redone

    assert run_worker(settings, burst=True, worker_id="caption-worker") == 0
    done = api.get(f"/api/jobs/{job['id']}").json()
    assert done["status"] == "succeeded", done
    assert done["result"] == {"captioned": 2, "kept": 0, "images": 2}

    # Every image has a caption; the hand-written one is untouched; each .txt mirrors the database.
    assert _caption_of(api, ids[0]) == HAND_WRITTEN
    for image_id in ids:
        caption = _caption_of(api, image_id)
        assert caption.strip()
        assert _caption_file(settings, character, image_id) == caption
    for image_id in ids[1:]:
        assert _caption_of(api, image_id).startswith("photo of [trigger], ")

    # SSE: one caption event per image, in order, with the caption written, between the start and the end.
    events = _events(api, job["id"])
    captions = [data for kind, data in events if kind == "caption"]
    assert [(c["image_id"], c["index"], c["total"], c["written"]) for c in captions] == [
        (ids[1], 1, 2, True),
        (ids[2], 2, 2, True),
    ]
    assert [c["caption"] for c in captions] == [_caption_of(api, ids[1]), _caption_of(api, ids[2])]
    statuses = [data["status"] for kind, data in events if kind == "status"]
    assert statuses == ["queued", "running", "succeeded"]

    # "Regenerate" one image: chosen, and asked to overwrite.
    before = _caption_of(api, ids[0])
    regen = {"scope": "selected", "image_ids": [ids[0]], "overwrite": True, "config": FAST,
             "style": {"trigger_placement": "first", "suffix": "film grain"}}  # fmt: skip
    again = api.post(f"/api/characters/{character}/captions/auto", json=regen)
    assert again.status_code == 202, again.text
    assert run_worker(settings, burst=True, worker_id="caption-worker") == 0
    after = _caption_of(api, ids[0])
    assert after != before and after.startswith("[trigger], ") and after.endswith(", film grain")
    assert _caption_file(settings, character, ids[0]) == after
    # Regenerating with the same style again gives another candidate: it samples instead of decoding greedily.
    sampled = {**regen, "config": {**FAST, "temperature": 1.0}}
    again = api.post(f"/api/characters/{character}/captions/auto", json=sampled)
    assert again.status_code == 202, again.text
    assert run_worker(settings, burst=True, worker_id="caption-worker") == 0
    assert _caption_of(api, ids[0]) != after

    # The API only queued the work: its own instance of the captioner never loaded a model (the worker's did).
    api_captioner = api.app.state.services.plugins.get(PluginKind.CAPTION, "qwen-vl")  # type: ignore[attr-defined]
    assert isinstance(api_captioner, QwenVLCaptioner) and api_captioner._loaded is None

    # Nothing left without a caption: "only empty" has nothing to do, and says so.
    empty_only = api.post(f"/api/characters/{character}/captions/auto", json={"scope": "empty", "config": FAST})
    assert empty_only.status_code == 422 and "nothing to caption" in empty_only.json()["detail"]


def test_cancel_stops_a_running_caption_job(api: TestClient, settings: Settings) -> None:
    character, ids = _dataset(api, 8)
    body = {"scope": "empty", "config": {**FAST, "batch_size": 1, "max_new_tokens": 48}}
    job = api.post(f"/api/characters/{character}/captions/auto", json=body).json()
    with worker_thread(settings, "caption-canceller"):
        wait_for(lambda: any(_caption_of(api, i) for i in ids), 120, "a first caption is written")
        assert api.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
        wait_for(lambda: api.get(f"/api/jobs/{job['id']}").json()["status"] == "cancelled", 60, "the job stops")
    captioned = [i for i in ids if _caption_of(api, i)]
    assert 1 <= len(captioned) < len(ids), "stopped after some images, before the last"
    # What was written stays written, file included; the rest has neither a caption nor a file.
    for image_id in ids:
        assert _caption_file(settings, character, image_id) == (_caption_of(api, image_id) or None)


def test_bad_caption_requests_are_clear_4xx(api: TestClient) -> None:
    character, _ids = _dataset(api, 1)
    other = api.post("/api/characters", json={"name": "Bo"}).json()["id"]
    url = f"/api/characters/{character}/captions/auto"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"plugin": "nope"}, 422, "no caption plugin named 'nope'"),
        ({"scope": "selected"}, 422, "needs image_ids"),
        ({"scope": "selected", "image_ids": ["f" * 32]}, 422, "not images of this character"),
        ({"config": {"batch_size": 0}}, 422, "config.batch_size"),
        ({"config": {"unknown": 1}}, 422, "config.unknown"),
        ({"style": {"max_words": 1}}, 422, "max_words"),
        ({"scope": "everything"}, 422, "scope"),
    ]
    for body, status, words in cases:
        response = api.post(url, json=body)
        assert response.status_code == status, (body, response.text)
        assert words in response.text, (body, response.text)
    assert api.post("/api/characters/" + "0" * 32 + "/captions/auto", json={}).status_code == 404
    no_images = api.post(f"/api/characters/{other}/captions/auto", json={"scope": "all"})
    assert no_images.status_code == 422 and "has no images" in no_images.json()["detail"]
    assert api.get("/api/jobs", params={"kind": "caption"}).json()["total"] == 0  # nothing was half-submitted


def test_linter_findings_in_the_lint_route_and_the_dataset_report(api: TestClient) -> None:
    character, ids = _dataset(api, 3)
    api.patch(f"/api/images/{ids[0]}", json={"caption": "a young woman with blue eyes in a red coat"})
    api.patch(f"/api/images/{ids[1]}", json={"caption": "[trigger], standing by a window, soft light"})
    lint = api.get(f"/api/characters/{character}/captions/lint").json()
    assert lint["trigger_word"] == "adaxq" and lint["images"] == 3
    kinds = {(f["image_id"], f["kind"]) for f in lint["findings"]}
    assert kinds == {(ids[0], "missing_trigger"), (ids[0], "identity"), (ids[2], "empty")}
    identity = next(f for f in lint["findings"] if f["kind"] == "identity")
    assert identity["words"] == ["young", "blue eyes"]
    # One click: the fixed caption goes back through the ordinary caption edit.
    assert api.patch(f"/api/images/{ids[0]}", json={"caption": identity["fixed_caption"]}).status_code == 200
    remaining = api.get(f"/api/characters/{character}/captions/lint").json()["findings"]
    assert {(f["image_id"], f["kind"]) for f in remaining} == {(ids[0], "missing_trigger"), (ids[2], "empty")}

    report = api.get(f"/api/characters/{character}/dataset/report").json()
    assert {(f["image_id"], f["kind"]) for f in report["caption_findings"]} == {
        (ids[0], "missing_trigger"),
        (ids[2], "empty"),
    }
    assert "1 caption to fix" in report["verdict"] and "1 without a caption" in report["verdict"]
    assert api.get(f"/api/characters/{character}/captions/lint", params={"language": "xx"}).status_code == 422


def test_a_worker_keeps_only_the_last_jobs_model_loaded(api: TestClient, settings: Settings) -> None:
    """A caption model and a FLUX pipeline do not share a consumer GPU: before a job of one plugin runs, the worker
    has every other plugin let go of the model it kept from its own last job."""
    shutil.copytree(save_tiny_model(settings.data_path / "built" / "tiny-flux"), tiny_model_dir(settings))
    character, _ = _dataset(api, 2)
    caption = api.post(f"/api/characters/{character}/captions/auto", json={"scope": "all", "config": FAST})
    assert caption.status_code == 202, caption.text
    render = {"prompt": "a cat", "width": 64, "height": 64, "steps": 2}
    generation = api.post("/api/generation", json=render)
    assert generation.status_code == 202, generation.text

    worker = Worker(settings, worker_id="one-gpu", burst=True)
    assert worker.run() == 0
    jobs = [api.get(f"/api/jobs/{job.json()['id']}").json() for job in (caption, generation)]
    assert [job["status"] for job in jobs] == ["succeeded", "succeeded"], jobs
    last = max(jobs, key=lambda job: str(job["finished_at"]))["kind"]

    captioner = worker.registry.get(PluginKind.CAPTION, "qwen-vl")
    generator = worker.registry.get(PluginKind.IMAGE, "diffusers")
    assert isinstance(captioner, QwenVLCaptioner) and isinstance(generator, DiffusersFluxGenerator)
    holding = {"caption": captioner._loaded is not None, "generation": generator.cache.loaded is not None}
    assert holding == {"caption": last == "caption", "generation": last == "generation"}, (last, holding)
