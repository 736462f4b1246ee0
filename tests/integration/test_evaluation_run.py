"""End to end on the tiny model through the API, the queue and a worker: every training sample is scored as it is
made (clip evaluator, tiny CLIP), and the run gets per-checkpoint scores, a recommendation and verdicts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from fastapi.testclient import TestClient

from isengard.config import Settings
from isengard.worker.main import run_worker
from tests.support.training_setup import SMALL, make_character

THREE_CHECKPOINTS = {
    **SMALL, "steps": 30, "sample_every": 10, "checkpoint_every": 10, "keep_checkpoints": 3,
    "sample_prompts": ["[trigger] portrait, smiling", "[trigger] in a red coat"],
}  # fmt: skip


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_every_sample_of_a_run_is_scored_and_a_checkpoint_recommended(client: TestClient, settings: Settings) -> None:
    character = make_character(client, "Scored Runner", 3)
    job = client.post("/api/training", json={"character_id": character, "config": THREE_CHECKPOINTS}).json()
    assert run_worker(settings, burst=True) == 0
    assert client.get(f"/api/jobs/{job['id']}").json()["status"] == "succeeded"

    samples = [a for a in client.get(f"/api/jobs/{job['id']}/artifacts").json() if a["kind"] == "sample"]
    evaluation = client.get(f"/api/jobs/{job['id']}/evaluation").json()
    assert evaluation["status"] == "available", evaluation
    # The photos have no faces: whole-image identity, and the choice is said.
    assert evaluation["identity_evaluator"] == "clip" and "whole-image" in evaluation["choice"]
    assert evaluation["text_evaluator"] == "clip" and evaluation["references"] == 3
    scored = {s["artifact_id"]: s for s in evaluation["samples"]}
    assert set(scored) == {s["id"] for s in samples} and len(samples) >= 6
    for score in scored.values():
        assert all(isinstance(score[key], float) for key in ("identity", "adherence", "copying")), score
    steps = [row["step"] for row in evaluation["checkpoints"]]
    assert steps == sorted(steps) and {10, 20, 30} <= set(steps)
    marked = [row for row in evaluation["checkpoints"] if row["recommended"]]
    assert len(marked) == 1 and marked[0]["step"] == evaluation["recommended_step"]
    assert marked[0]["checkpoint_artifact_id"] is not None
    assert evaluation["verdicts"] is not None  # a table of random scores may or may not call for one


def test_an_unknown_run_is_a_404(client: TestClient) -> None:
    assert client.get("/api/jobs/nope/evaluation").status_code == 404
