"""Text a database cannot store is refused before it reaches one: NUL anywhere and text longer than its column
answer 422 on SQLite and on PostgreSQL alike, never a 5xx; ids are checked before any query."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from isengard.api.support.text import column_max_length
from isengard.db.models import Character, Lora, TrainingPreset

pytestmark = pytest.mark.databases

NUL = "a\x00b"
SOME_ID = "0" * 32

# (method, path, JSON body or None): each carries a NUL in a different text a client can send.
NUL_REQUESTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/api/characters", {"name": NUL}),
    ("POST", "/api/characters", {"name": "ok", "description": NUL}),
    ("POST", "/api/characters", {"name": "ok", "trigger_word": NUL}),
    ("PATCH", f"/api/characters/{SOME_ID}", {"description": NUL}),
    ("POST", f"/api/characters/{SOME_ID}/captions/bulk", {"action": "find_replace", "find": NUL}),
    ("POST", f"/api/characters/{SOME_ID}/captions/bulk", {"action": "set_missing", "caption": NUL}),
    ("PATCH", f"/api/images/{SOME_ID}", {"caption": NUL}),
    ("POST", "/api/training/presets", {"name": NUL, "config": {}}),
    ("POST", "/api/training/presets", {"name": "preset", "config": {"sample_prompts": [NUL]}}),
    ("POST", "/api/training", {"character_id": SOME_ID, "name": NUL}),
    ("POST", "/api/logs", {"message": NUL}),
    ("POST", "/api/logs", {"message": "m", "context": {NUL: 1}}),
    ("POST", "/api/generation", {"prompt": NUL, "loras": []}),
    ("POST", "/api/generation/grid", {"prompts": [NUL], "seeds": [1], "include_base": True}),
    ("PATCH", f"/api/loras/{SOME_ID}", {"name": NUL}),
    ("GET", "/api/jobs?character_id=a%00b", None),
    ("GET", "/api/jobs/a%00b", None),
    ("POST", "/api/jobs/a%00b/cancel", None),
    ("GET", "/api/jobs/a%00b/history", None),
    ("GET", "/api/jobs/a%00b/events", None),
    ("GET", "/api/loras/resolve?name=a%00b", None),
    ("GET", "/api/jobs/a%00b/evaluation", None),
    ("POST", f"/api/loras/{SOME_ID}/evaluation", {"prompts": [NUL]}),
]


@pytest.mark.parametrize(("method", "path", "body"), NUL_REQUESTS, ids=[f"{m} {p}" for m, p, _ in NUL_REQUESTS])
def test_nul_is_refused_with_a_422_that_says_so(
    client: TestClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == 422, response.text
    if body is not None:
        assert "NUL" in response.text


def test_every_character_text_is_bounded_by_its_column(client: TestClient) -> None:
    too_long_trigger = "t" * (column_max_length(Character.trigger_word) + 1)
    response = client.post("/api/characters", json={"name": "Ada", "trigger_word": too_long_trigger})
    assert response.status_code == 422
    created = client.post("/api/characters", json={"name": "Ada", "trigger_word": "t" * 100})
    assert created.status_code == 201, created.text


def test_preset_and_lora_names_are_bounded_by_their_columns(client: TestClient) -> None:
    name = "p" * (column_max_length(TrainingPreset.name) + 1)
    assert client.post("/api/training/presets", json={"name": name, "config": {}}).status_code == 422
    lora_name = "l" * (column_max_length(Lora.name) + 1)
    assert client.patch(f"/api/loras/{SOME_ID}", json={"name": lora_name}).status_code == 422


def test_every_grid_prompt_has_the_single_prompt_bound(client: TestClient) -> None:
    single = client.post("/api/generation", json={"prompt": "x" * 4001})
    grid = client.post("/api/generation/grid", json={"prompts": ["x" * 4001], "seeds": [1], "include_base": True})
    assert single.status_code == 422
    assert grid.status_code == 422, grid.text


def test_a_bulk_edit_respects_the_hand_edit_limit(client: TestClient) -> None:
    from isengard.captions.trigger import MAX_CAPTION_CHARS
    from tests.support.training_setup import png

    character = client.post("/api/characters", json={"name": "Bulk", "trigger_word": "bulkxq"}).json()["id"]
    upload = client.post(f"/api/characters/{character}/images", files=[("files", ("p.png", png(1), "image/png"))])
    image_id = upload.json()["results"][0]["image"]["id"]
    full = "w" * MAX_CAPTION_CHARS
    assert client.patch(f"/api/images/{image_id}", json={"caption": full}).status_code == 200
    response = client.post(f"/api/characters/{character}/captions/bulk", json={"action": "prepend_trigger"})
    assert response.status_code == 422, response.text
    assert client.get(f"/api/images/{image_id}").json()["caption"] == full  # nothing changed


def test_a_find_replace_that_would_exceed_the_hand_edit_limit_changes_nothing(client: TestClient) -> None:
    from isengard.captions.trigger import MAX_CAPTION_CHARS
    from tests.support.training_setup import png

    character = client.post("/api/characters", json={"name": "Swap", "trigger_word": "swapxq"}).json()["id"]
    files = [("files", (f"p{i}.png", png(i + 1), "image/png")) for i in range(2)]
    upload = client.post(f"/api/characters/{character}/images", files=files)
    short_id, long_id = (result["image"]["id"] for result in upload.json()["results"])
    # One caption the edit keeps within the limit, one it would push past it (a word a few hundred times over).
    captions = {short_id: "a word here", long_id: "word " * (MAX_CAPTION_CHARS // 5)}
    for image_id, caption in captions.items():
        assert client.patch(f"/api/images/{image_id}", json={"caption": caption}).status_code == 200
    before = {image_id: client.get(f"/api/images/{image_id}").json()["caption"] for image_id in captions}
    edit = {"action": "find_replace", "find": "word", "replace": "longer words"}
    response = client.post(f"/api/characters/{character}/captions/bulk", json=edit)
    assert response.status_code == 422, response.text
    assert "nothing was changed" in response.text
    after = {image_id: client.get(f"/api/images/{image_id}").json()["caption"] for image_id in captions}
    assert after == before, "neither caption changed, the one within the limit included"
