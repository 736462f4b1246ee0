"""Artifacts recorded by the worker's job context: one row per (job, path), even when a retry saves a file again;
a LoRA artifact and its library row name each other."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from isengard.config import Settings
from isengard.db.models import Generation, JobArtifact, Lora
from isengard.domain import ArtifactKind, JobKind
from isengard.jobs.artifacts import JobSnapshot
from isengard.jobs.states import JobStates
from isengard.storage import atomic_write_bytes
from isengard.worker.context import WorkerJobContext
from tests.integration.queue_support import JobStore, migrated_queue_settings

pytestmark = pytest.mark.databases


@pytest.fixture()
def settings(data_dir: Path, redis_url: str) -> Settings:
    return migrated_queue_settings(data_dir, redis_url, min_free_bytes=0)


def context_for(settings: Settings, store: JobStore, job_id: str, kind: JobKind, attempt: int) -> WorkerJobContext:
    job = store.job(job_id)
    snapshot = JobSnapshot(id=job.id, kind=kind.value, plugin=job.plugin, character_id=None, name=job.name)
    return WorkerJobContext(
        settings=settings,
        states=JobStates(
            store.sessions, redis.Redis.from_url(str(settings.redis_url)), event_maxlen=settings.event_stream_maxlen
        ),
        job=snapshot,
        attempt=attempt,
        worker_id=f"w{attempt}",
        shutdown=threading.Event(),
        lease_lost=threading.Event(),
    )


def test_a_retry_saving_the_same_output_updates_its_rows(settings: Settings, store: JobStore) -> None:
    job = store.submit("test-echo", {"count": 2}, kind=JobKind.GENERATION)
    first = context_for(settings, store, job.id, JobKind.GENERATION, attempt=1)
    image = first.work_dir / "image-0.txt"
    atomic_write_bytes(image, b"first attempt")
    saved = first.save_artifact(image, ArtifactKind.OUTPUT, meta={"prompt": "a knight", "seed": 7})

    # The worker died; the retry regenerates the same image (same seed, same path) and saves it again.
    retry = context_for(settings, store, job.id, JobKind.GENERATION, attempt=2)
    atomic_write_bytes(image, b"second attempt, longer")
    again = retry.save_artifact(image, ArtifactKind.OUTPUT, meta={"prompt": "a knight", "seed": 8})
    other = retry.work_dir / "image-1.txt"
    atomic_write_bytes(other, b"new")
    retry.save_artifact(other, ArtifactKind.OUTPUT, meta={"prompt": "a knight", "seed": 9})

    assert again.id == saved.id, "the artifact keeps its id (URLs sent to clients stay valid)"
    with store.sessions() as session:
        artifacts = session.scalars(select(JobArtifact).where(JobArtifact.job_id == job.id)).all()
        generations = session.scalars(select(Generation).where(Generation.job_id == job.id)).all()
    assert sorted(a.path.rsplit("/", 1)[-1] for a in artifacts) == ["image-0.txt", "image-1.txt"]
    assert len(generations) == 2
    first_row = next(a for a in artifacts if a.id == saved.id)
    assert first_row.bytes == len(b"second attempt, longer")
    assert first_row.meta["seed"] == 8
    assert sorted(g.seed for g in generations) == [8, 9], "the gallery row follows the latest save"


def test_a_retry_saving_the_same_checkpoint_keeps_one_lora_row(settings: Settings, store: JobStore) -> None:
    job = store.submit("test-steps", {"steps": 10}, name="Aria")
    first = context_for(settings, store, job.id, JobKind.TRAINING, attempt=1)
    weights = first.work_dir / "checkpoints" / "step-000005" / "lora.safetensors"
    weights.parent.mkdir(parents=True)
    atomic_write_bytes(weights, b"weights")
    first.save_artifact(weights, ArtifactKind.CHECKPOINT, step=5, meta={"rank": 4})
    with store.sessions() as session:
        lora = session.scalars(select(Lora).where(Lora.job_id == job.id)).one()
        lora.name = "renamed by a person"
        session.commit()

    retry = context_for(settings, store, job.id, JobKind.TRAINING, attempt=2)
    retry.save_artifact(weights, ArtifactKind.CHECKPOINT, step=5, meta={"rank": 8})

    with store.sessions() as session:
        artifacts = session.scalars(select(JobArtifact).where(JobArtifact.job_id == job.id)).all()
        loras = session.scalars(select(Lora).where(Lora.job_id == job.id)).all()
    assert len(artifacts) == 1
    assert len(loras) == 1
    assert loras[0].rank == 8
    assert loras[0].name == "renamed by a person"


def test_lora_artifacts_and_library_rows_name_each_other(
    settings: Settings, store: JobStore, client: TestClient
) -> None:
    job = store.submit("test-steps", {"steps": 10}, name="Aria")
    first = context_for(settings, store, job.id, JobKind.TRAINING, attempt=1)
    saved = {}
    for kind, step, folder in (
        (ArtifactKind.CHECKPOINT, 5, "step-000005"),
        (ArtifactKind.CHECKPOINT, 10, "step-000010"),
        (ArtifactKind.LORA, 10, "final"),
    ):
        weights = first.work_dir / "checkpoints" / folder / "lora.safetensors"
        weights.parent.mkdir(parents=True)
        atomic_write_bytes(weights, f"weights {folder}".encode())
        saved[folder] = first.save_artifact(weights, kind, step=step, meta={"rank": 4})
    # A retry saving a checkpoint again updates both rows and keeps the link between them.
    retry = context_for(settings, store, job.id, JobKind.TRAINING, attempt=2)
    again = retry.save_artifact(
        first.work_dir / "checkpoints" / "step-000005" / "lora.safetensors", ArtifactKind.CHECKPOINT, step=5
    )
    assert again.meta["lora_id"] == saved["step-000005"].meta["lora_id"]

    history = client.get(f"/api/jobs/{job.id}/history").json()
    listed = client.get(f"/api/jobs/{job.id}/artifacts").json()
    assert sorted(a["id"] for a in history["checkpoints"]) == sorted(a.id for a in saved.values())
    assert {a["id"]: a["meta"]["lora_id"] for a in listed} == {
        a["id"]: a["meta"]["lora_id"] for a in history["checkpoints"]
    }
    lora_ids = set()
    for artifact in history["checkpoints"]:
        response = client.get(f"/api/loras/{artifact['meta']['lora_id']}")
        assert response.status_code == 200, response.text
        lora = response.json()
        assert lora["meta"]["artifact_id"] == artifact["id"]
        assert lora["job_id"] == job.id
        assert lora["step"] == artifact["step"]
        assert lora["source"] == ("trained" if artifact["kind"] == "lora" else "checkpoint")
        lora_ids.add(lora["id"])
    assert len(lora_ids) == 3, "each artifact names its own LoRA"


def test_a_retry_sees_what_earlier_attempts_recorded(settings: Settings, store: JobStore) -> None:
    job = store.submit("test-steps", {"steps": 4}, kind=JobKind.TRAINING)
    first = context_for(settings, store, job.id, JobKind.TRAINING, attempt=1)
    sample = first.work_dir / "samples" / "s_000000004_0.jpg"
    atomic_write_bytes(sample, b"sample")
    recorded_sample = first.emit_sample(sample, step=5, index=0, prompt="p")
    checkpoint = first.work_dir / "run_000000003.safetensors"
    atomic_write_bytes(checkpoint, b"weights")
    recorded_checkpoint = first.save_artifact(checkpoint, ArtifactKind.CHECKPOINT, step=4, meta={"rank": 4})
    removed = first.work_dir / "old.safetensors"
    atomic_write_bytes(removed, b"weights")
    first.remove_artifact(first.save_artifact(removed, ArtifactKind.CHECKPOINT, step=1))

    retry = context_for(settings, store, job.id, JobKind.TRAINING, attempt=2)
    seen = {(a.id, a.kind, a.path, a.step) for a in retry.recorded_artifacts()}
    assert seen == {
        (recorded_sample.id, ArtifactKind.SAMPLE, recorded_sample.path, 5),
        (recorded_checkpoint.id, ArtifactKind.CHECKPOINT, recorded_checkpoint.path, 4),
    }
