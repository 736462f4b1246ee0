"""kill -9 of a worker in the middle of a real flux-lora training and a real diffusers generation on the tiny model.

The job is taken over by a second worker once the lease runs out: training resumes from its last complete
checkpoint (not from step 0) and ends with exactly one LoRA; generation starts again and ends with exactly the
requested images, each recorded once, none half-written.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from safetensors import safe_open
from sqlalchemy import select

from isengard.api.app import create_app
from isengard.config import Settings
from isengard.db.migrate import upgrade
from isengard.db.models import Generation, Job, JobArtifact, Lora
from isengard.db.session import make_engine, make_sessionmaker
from isengard.models.tiny import ensure_tiny_model
from tests.conftest import make_settings
from tests.integration.queue_support import start_worker_process, stop_process, wait_for
from tests.support.training_setup import make_character

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

TRAINING = {
    "steps": 400, "rank": 4, "alpha": 8.0, "learning_rate": 2e-3, "resolutions": [64], "batch_size": 1,
    "sample_every": 0, "sample_prompts": ["[trigger] portrait"], "sample_resolution": 64, "sample_steps": 2,
    "checkpoint_every": 25, "keep_checkpoints": 2, "max_sequence_length": 32, "caption_dropout": 0.0,
}  # fmt: skip


@pytest.fixture()
def crash_settings(data_dir: Path, redis_url: str) -> Settings:
    settings = make_settings(data_dir, redis_url=redis_url, lease_seconds=2.0, heartbeat_seconds=0.4, min_free_bytes=0)
    upgrade(settings.sqlalchemy_url)
    ensure_tiny_model(settings)  # as `isengard up` does before anything serves
    return settings


@pytest.fixture()
def api(crash_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(crash_settings)) as client:
        yield client


@pytest.fixture()
def workers(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        stop_process(process)


def _kill9(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _job(api: TestClient, job_id: str) -> dict[str, object]:
    body: dict[str, object] = api.get(f"/api/jobs/{job_id}").json()
    return body


def _final(api: TestClient, job_id: str, timeout: float = 200) -> dict[str, object]:
    return wait_for(
        lambda: (job := _job(api, job_id))["status"] in {"succeeded", "failed", "cancelled"} and job,
        timeout,
        f"job {job_id} did not finish",
        interval=0.2,
    )


def _no_partial_files(settings: Settings) -> None:
    leftovers = [p for p in settings.data_path.rglob("*") if ".part" in p.name and p.is_file()]
    assert leftovers == [], leftovers


def test_kill_9_mid_real_training_resumes_from_its_checkpoint(
    api: TestClient, crash_settings: Settings, workers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    character = make_character(api, "Crash Trainee", 3)
    response = api.post("/api/training", json={"character_id": character, "config": TRAINING, "name": "crash"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    workers.append(start_worker_process(crash_settings, "real-w1", log_path=tmp_path / "w1.log"))

    def checkpoint_steps() -> list[int]:
        artifacts = api.get(f"/api/jobs/{job_id}/artifacts", params={"kind": "checkpoint"}).json()
        return sorted(int(a["step"]) for a in artifacts)

    wait_for(lambda: checkpoint_steps() and checkpoint_steps()[-1] >= 50, 150, "no checkpoint written", interval=0.2)
    _kill9(workers[0])
    crashed = _job(api, job_id)
    assert crashed["status"] == "running"
    survived = checkpoint_steps()[-1]

    workers.append(start_worker_process(crash_settings, "real-w2", log_path=tmp_path / "w2.log"))
    done = _final(api, job_id)
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert isinstance(result, dict)
    assert result["resumed_from"] >= survived  # from the checkpoint that survived the crash, not from zero
    assert result["steps"] == TRAINING["steps"]
    assert int(str(done["attempts"])) >= 2
    _no_partial_files(crash_settings)

    # Loss history continues across the crash: every step of the run has a point, the resumed ones included.
    loss_steps = {point["step"] for point in api.get(f"/api/jobs/{job_id}/history").json()["loss"]}
    assert set(range(survived + 1, TRAINING["steps"] + 1)) <= loss_steps

    engine = make_engine(crash_settings.sqlalchemy_url)
    try:
        with make_sessionmaker(engine)() as session:
            trained = session.scalars(select(Lora).where(Lora.job_id == job_id, Lora.source == "trained")).all()
            assert len(trained) == 1
            checkpoints = session.scalars(select(Lora).where(Lora.job_id == job_id, Lora.source == "checkpoint")).all()
            assert len(checkpoints) <= TRAINING["keep_checkpoints"]
            for lora in [*trained, *checkpoints]:
                with safe_open(str(crash_settings.data_path / lora.path), framework="pt") as handle:
                    assert handle.metadata()["trigger_word"] == "zxq"
    finally:
        engine.dispose()


def test_kill_9_mid_real_generation_ends_with_each_image_once(
    api: TestClient, crash_settings: Settings, workers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    character = make_character(api, "Crash Sitter", 0)
    count = 8
    request = {
        "character_id": character, "prompt": "a portrait", "width": 128, "height": 128, "steps": 30,
        "seed": 7, "num_images": count,
    }  # fmt: skip
    response = api.post("/api/generation", json=request)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    workers.append(start_worker_process(crash_settings, "gen-w1", log_path=tmp_path / "g1.log"))

    def outputs() -> list[dict[str, object]]:
        items: list[dict[str, object]] = api.get(f"/api/jobs/{job_id}/artifacts", params={"kind": "output"}).json()
        return items

    wait_for(lambda: len(outputs()) >= 1, 150, "no image generated", interval=0.1)
    _kill9(workers[0])
    assert _job(api, job_id)["status"] == "running"

    workers.append(start_worker_process(crash_settings, "gen-w2", log_path=tmp_path / "g2.log"))
    done = _final(api, job_id)
    assert done["status"] == "succeeded", done
    _no_partial_files(crash_settings)
    final_outputs = outputs()
    assert len(final_outputs) == count
    assert len({str(item["name"]) for item in final_outputs}) == count

    engine = make_engine(crash_settings.sqlalchemy_url)
    try:
        with make_sessionmaker(engine)() as session:
            gallery = session.scalars(select(Generation).where(Generation.job_id == job_id)).all()
            assert len(gallery) == count
            assert sorted(g.seed for g in gallery) == list(range(7, 7 + count))
            for generation in gallery:
                assert (crash_settings.data_path / generation.path).is_file()
            rows = session.scalars(select(JobArtifact).where(JobArtifact.job_id == job_id)).all()
            assert all((crash_settings.data_path / row.path).is_file() for row in rows)
            assert session.get(Job, job_id) is not None
    finally:
        engine.dispose()
