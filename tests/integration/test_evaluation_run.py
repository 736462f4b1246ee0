"""End to end on the tiny model through the API, the queue and a worker: every training sample is scored as it is
made (clip evaluator, tiny CLIP), and the run gets per-checkpoint scores, a recommendation and verdicts."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import torch
from fastapi.testclient import TestClient

from isengard.api.app import create_app
from isengard.cli import build_parser
from isengard.config import Settings
from isengard.worker.main import run_worker
from tests.support.live_server import serve_in_thread
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


def test_every_sample_of_a_run_is_scored_and_a_checkpoint_recommended(
    client: TestClient, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
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

    _the_recommended_checkpoint_is_the_characters_default_until_the_person_chooses(client, character, evaluation)

    # `isengard evaluate` prints the same table and pick, by run number or job id.
    with serve_in_thread(create_app(settings)) as url:
        capsys.readouterr()
        args = build_parser().parse_args(["evaluate", "--run", "1", "--json", "--api", url])
        assert args.func(args) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["recommended_step"] == evaluation["recommended_step"]
        args = build_parser().parse_args(["evaluate", "--run", job["id"], "--api", url])
        assert args.func(args) == 0
        table = capsys.readouterr().out
        assert f"Recommended checkpoint: step {evaluation['recommended_step']}" in table
        assert "← recommended" in table
        args = build_parser().parse_args(["evaluate", "--run", "7", "--api", url])
        assert args.func(args) == 1
        assert "no training run number 7" in capsys.readouterr().err


def test_an_unknown_run_is_a_404(client: TestClient) -> None:
    assert client.get(f"/api/jobs/{'0' * 32}/evaluation").status_code == 404
    assert client.get("/api/jobs/nope/evaluation").status_code == 422  # not an id at all


def _the_recommended_checkpoint_is_the_characters_default_until_the_person_chooses(
    client: TestClient, character: str, evaluation: dict[str, object]
) -> None:
    recommended = evaluation["recommended_lora_id"]
    assert isinstance(recommended, str)
    route = f"/api/characters/{character}/default-lora"
    default = client.get(route).json()
    assert default["reason"] == "recommended" and default["lora"]["id"] == recommended
    assert default["recommended_lora_id"] == recommended

    def marked() -> dict[str, str]:
        listing = client.get("/api/loras", params={"character_id": character}).json()["items"]
        return {item["id"]: item["default_reason"] for item in listing if item["default_reason"]}

    assert marked() == {recommended: "recommended"}
    assert client.get("/api/loras/resolve", params={"name": "Scored Runner"}).json()["id"] == recommended

    # The person overrides it; the choice is kept (and a character's name resolves to it) until cleared.
    loras = client.get("/api/loras", params={"character_id": character}).json()["items"]
    other = next(item["id"] for item in loras if item["id"] != recommended)
    chosen = client.put(route, json={"lora_id": other}).json()
    assert chosen["reason"] == "chosen" and chosen["lora"]["id"] == other
    assert chosen["recommended_lora_id"] == recommended
    assert client.get(route).json()["lora"]["id"] == other
    assert marked() == {other: "chosen"}
    assert client.get("/api/loras/resolve", params={"name": "Scored Runner"}).json()["id"] == other

    # Bad choices are refused and change nothing.
    stranger = make_character(client, "Someone Else", 0)
    assert client.put(route, json={"lora_id": "0" * 32}).status_code == 422
    assert client.put(route, json={"lora_id": "not-an-id"}).status_code == 422
    assert client.put(f"/api/characters/{stranger}/default-lora", json={"lora_id": other}).status_code == 422
    assert client.get(f"/api/characters/{'0' * 32}/default-lora").status_code == 404
    assert client.get(f"/api/characters/{stranger}/default-lora").json() == {
        "character_id": stranger, "lora": None, "reason": None, "recommended_lora_id": None,
    }  # fmt: skip
    assert client.get(route).json()["lora"]["id"] == other

    # Deleting the chosen LoRA goes back to the automatic choice; so does clearing the choice.
    assert client.put(route, json={"lora_id": None}).json()["lora"]["id"] == recommended
    client.put(route, json={"lora_id": other})
    assert client.delete(f"/api/loras/{other}").status_code == 204
    assert client.get(route).json()["reason"] == "recommended"
