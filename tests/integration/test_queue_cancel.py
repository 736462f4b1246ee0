"""Cancellation through the API: a queued job at once, a running one at its next step (keeping its checkpoint)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from isengard.api.app import create_app
from isengard.domain import JobKind, JobStatus
from isengard.queue import keys
from tests.integration.queue_support import open_store, queue_settings, trace_lines, wait_for, worker_thread

pytestmark = pytest.mark.databases


def test_cancel_queued_and_running_jobs(data_dir: Path, redis_url: str, redis_client: redis.Redis) -> None:
    settings = queue_settings(data_dir, redis_url)
    with open_store(settings) as store, TestClient(create_app(settings)) as client:
        queued = store.submit("test-steps", {"steps": 5})
        answer = client.post(f"/api/jobs/{queued.id}/cancel")
        assert answer.status_code == 200
        assert answer.json()["status"] == "cancelled"
        assert redis_client.xlen(keys.job_stream("training")) == 0, "its entry left the queue"
        again = client.post(f"/api/jobs/{queued.id}/cancel")
        assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
        assert client.post("/api/jobs/" + "f" * 32 + "/cancel").status_code == 404  # well-formed, unknown
        assert client.post("/api/jobs/nope/cancel").status_code == 422  # malformed: refused before any lookup

        running = store.submit("test-steps", {"steps": 400, "sleep": 0.02, "checkpoint_every": 10})
        with worker_thread(settings, "canceller"):
            wait_for(lambda: (store.job(running.id).progress or {}).get("step", 0) >= 25, 60, "job running")
            answer = client.post(f"/api/jobs/{running.id}/cancel")
            assert answer.status_code == 200
            assert answer.json()["status"] == "running" and answer.json()["cancel_requested"] is True
            wait_for(lambda: store.job(running.id).status == "cancelled", 30, "cancelled at the next step")
        job = client.get(f"/api/jobs/{running.id}").json()
        assert job["status"] == "cancelled" and job["error"] is None
        assert job["progress"]["step"] < 400
        history = client.get(f"/api/jobs/{running.id}/history").json()
        last_status = history["statuses"][-1]
        assert last_status["status"] == "cancelled"
        assert "checkpoint" in last_status["message"] and "kept" in last_status["message"]
        # The checkpoints stay, listed and downloadable.
        checkpoints = client.get(f"/api/jobs/{running.id}/artifacts", params={"kind": "checkpoint"}).json()
        assert checkpoints and all(a["kind"] == "checkpoint" for a in checkpoints)
        newest = max(checkpoints, key=lambda a: a["step"])
        assert str(newest["step"]) in last_status["message"]
        download = client.get(newest["url"])
        assert download.status_code == 200 and download.content == f"weights at step {newest['step']}".encode()
        # The queued job never ran.
        assert trace_lines(settings, store.job(queued.id)) == []
        assert not redis_client.exists(keys.job_cancel(running.id)), "the cancel flag is cleared once done"
        assert JobStatus(store.job(running.id).status).is_final


def test_job_routes_list_filter_and_refuse_bad_input(data_dir: Path, redis_url: str) -> None:
    settings = queue_settings(data_dir, redis_url)
    with open_store(settings) as store, TestClient(create_app(settings)) as client:
        trained = [store.submit("test-steps", {"steps": 1}) for _ in range(3)]
        generated = store.submit("test-echo", {"count": 1}, kind=JobKind.GENERATION)
        page = client.get("/api/jobs", params={"limit": 2}).json()
        assert page["total"] == 4 and len(page["items"]) == 2
        assert page["items"][0]["id"] == generated.id, "newest first"
        rest = client.get("/api/jobs", params={"limit": 2, "offset": 2}).json()
        assert {j["id"] for j in page["items"] + rest["items"]} == {j.id for j in [*trained, generated]}
        only = client.get("/api/jobs", params={"kind": "generation"}).json()
        assert [j["id"] for j in only["items"]] == [generated.id]
        assert client.get("/api/jobs", params={"status": "succeeded"}).json()["total"] == 0
        assert client.get("/api/jobs", params={"status": "exploded"}).status_code == 422
        assert client.get("/api/jobs", params={"limit": 0}).status_code == 422
        unknown = "f" * 32  # a well-formed id no job has; a malformed one is a 422 before any lookup
        missing = client.get(f"/api/jobs/{unknown}")
        assert missing.status_code == 404 and unknown in missing.json()["detail"]
        assert client.get("/api/jobs/unknown").status_code == 422
        assert client.get(f"/api/jobs/{generated.id}/artifacts/{unknown}/file").status_code == 404
        assert client.get(f"/api/jobs/{unknown}/events").status_code == 404
        with worker_thread(settings, "lister", burst=True):
            wait_for(lambda: store.job(generated.id).status == "succeeded", 60, "generation ran")
        outputs = client.get(f"/api/jobs/{generated.id}/artifacts").json()
        assert [a["kind"] for a in outputs] == ["output"]
        # Another job's artifact id does not resolve under this job.
        assert client.get(f"/api/jobs/{trained[0].id}/artifacts/{outputs[0]['id']}/file").status_code == 404
        assert client.get(outputs[0]["url"]).status_code == 200
