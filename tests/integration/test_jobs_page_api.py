"""What the Jobs page asks of the API, for every kind of job: the queue's order and estimated starts, filters,
cancel (a generation too), rerun and delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from isengard.api.app import create_app
from isengard.db.models import Job
from isengard.domain import JobKind, utcnow
from tests.integration.queue_support import open_store, queue_settings, wait_for, worker_thread
from tests.support.training_setup import SMALL, make_character

TYPICAL_GENERATION_SECONDS = 8.0


def _at(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def test_queued_jobs_say_their_place_and_when_they_start(data_dir: Path, redis_url: str) -> None:
    settings = queue_settings(data_dir, redis_url)
    with open_store(settings) as store, TestClient(create_app(settings)) as client:
        # One finished generation teaches the typical duration of its plugin.
        with store.sessions() as session:
            start = utcnow() - timedelta(minutes=5)
            session.add(
                Job(kind="generation", plugin="test-echo", status="succeeded", name="earlier", started_at=start,
                    finished_at=start + timedelta(seconds=TYPICAL_GENERATION_SECONDS))
            )  # fmt: skip
            session.commit()
        first = store.submit("test-echo", {"count": 1, "prompt": "one"}, kind=JobKind.GENERATION)
        second = store.submit("test-echo", {"count": 1, "prompt": "two"}, kind=JobKind.GENERATION)

        # No worker yet: each has its place, no start time, and the reason.
        queued = {job["id"]: job for job in client.get("/api/jobs", params={"status": "queued"}).json()["items"]}
        assert [queued[first.id]["queue_position"], queued[second.id]["queue_position"]] == [1, 2]
        assert queued[first.id]["estimated_start_at"] is None
        assert "no live worker runs generation jobs" in queued[first.id]["queue_note"]
        for job in (first, second):
            assert client.post(f"/api/jobs/{job.id}/cancel").json()["status"] == "cancelled"

        with worker_thread(settings, "busy"):
            # A long run keeps the only worker busy.
            run = store.submit("test-steps", {"steps": 2000, "sleep": 0.02}, name="long run")
            wait_for(lambda: (store.job(run.id).progress or {}).get("eta_seconds"), 30, "run reports an ETA")
            third = store.submit("test-echo", {"count": 1, "prompt": "three"}, kind=JobKind.GENERATION)
            fourth = store.submit("test-echo", {"count": 1, "prompt": "four"}, kind=JobKind.GENERATION)

            now = utcnow()
            answer = client.get("/api/jobs", params={"kind": "generation", "status": "queued"}).json()
            by_id = {job["id"]: job for job in answer["items"]}
            assert set(by_id) == {third.id, fourth.id}
            assert (by_id[third.id]["queue_position"], by_id[fourth.id]["queue_position"]) == (1, 2)
            third_start = _at(by_id[third.id]["estimated_start_at"])
            fourth_start = _at(by_id[fourth.id]["estimated_start_at"])
            eta = float(store.job(run.id).progress["eta_seconds"])
            # The first waits for the run's ETA, the next also for the typical time of the one before it.
            assert abs((third_start - now).total_seconds() - eta) < 5
            assert abs((fourth_start - third_start).total_seconds() - TYPICAL_GENERATION_SECONDS) < 1
            assert client.get(f"/api/jobs/{fourth.id}").json()["queue_position"] == 2
            running = client.get(f"/api/jobs/{run.id}").json()
            assert running["queue_position"] is None and running["estimated_start_at"] is None

            # A queued generation is cancelled from the list; the next moves up.
            assert client.post(f"/api/jobs/{third.id}/cancel").json()["status"] == "cancelled"
            assert client.get(f"/api/jobs/{fourth.id}").json()["queue_position"] == 1
            client.post(f"/api/jobs/{fourth.id}/cancel")
            client.post(f"/api/jobs/{run.id}/cancel")
            wait_for(lambda: store.job(run.id).status == "cancelled", 30, "run cancelled")


def test_rerun_and_delete_any_kind_of_job(data_dir: Path, redis_url: str) -> None:
    settings = queue_settings(data_dir, redis_url)
    with open_store(settings) as store, TestClient(create_app(settings)) as client:
        generation = store.submit("test-echo", {"count": 2, "prompt": "a lighthouse"}, kind=JobKind.GENERATION)
        assert client.post(f"/api/jobs/{generation.id}/rerun").status_code == 409  # queued: not ended yet
        assert client.delete(f"/api/jobs/{generation.id}").status_code == 409
        with worker_thread(settings, "rerunner"):
            wait_for(lambda: store.job(generation.id).status == "succeeded", 30, "generation done")
            answer = client.post(f"/api/jobs/{generation.id}/rerun")
            assert answer.status_code == 201, answer.text
            again = answer.json()
            assert again["id"] != generation.id and again["kind"] == "generation"
            assert again["name"] == store.job(generation.id).name
            wait_for(lambda: store.job(again["id"]).status == "succeeded", 30, "rerun done")
        assert store.job(again["id"]).payload == store.job(generation.id).payload
        gallery = client.get("/api/generations").json()["items"]
        assert sum(1 for image in gallery if image["prompt"] == "a lighthouse") == 4

        # Deleting a generation takes its images with it; the rerun's stay.
        assert client.delete(f"/api/jobs/{generation.id}").status_code == 204
        assert client.get(f"/api/jobs/{generation.id}").status_code == 404
        gallery = client.get("/api/generations").json()["items"]
        assert sum(1 for image in gallery if image["prompt"] == "a lighthouse") == 2
        assert client.post("/api/jobs/" + "0" * 32 + "/rerun").status_code == 404
        assert client.delete("/api/jobs/" + "0" * 32).status_code == 404


def test_rerun_of_a_training_run_is_a_new_run_with_the_same_settings(client: TestClient) -> None:
    character = make_character(client, "Rerun Person", 2)
    first = client.post("/api/training", json={"character_id": character, "config": SMALL}).json()
    client.post(f"/api/jobs/{first['id']}/cancel")
    answer = client.post(f"/api/jobs/{first['id']}/rerun")
    assert answer.status_code == 201, answer.text
    rerun = answer.json()
    assert rerun["status"] == "queued" and rerun["kind"] == "training"
    assert rerun["run_number"] == first["run_number"] + 1
    assert rerun["config"] == first["config"]
    # Filters: by kind, character and status at once.
    listed = client.get(
        "/api/jobs", params={"kind": "training", "character_id": character, "status": "cancelled"}
    ).json()
    assert [job["id"] for job in listed["items"]] == [first["id"]]
    assert client.get("/api/jobs", params={"kind": "generation", "character_id": character}).json()["total"] == 0
