"""A 2xx means stored: every write route has committed before its response starts.

A wrapper around the app reads the whole database through a connection of its own at the moment the response
starts, and again once the request is over; the two must be equal. A write committed after the response (in a
dependency's teardown, say) shows up only in the second read. The cases cover every write route of the app, so a
new route without a case fails here.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import save
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from isengard.api.app import create_app
from isengard.config import Settings
from isengard.db.models import Base, Generation, Job, Lora
from isengard.db.session import make_engine
from isengard.models.locate import tiny_model_dir
from isengard.models.tiny import save_tiny_model
from tests.support.training_setup import SMALL, make_character, png

pytestmark = pytest.mark.databases

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            table.name: sorted((tuple(row) for row in connection.execute(select(table))), key=repr)
            for table in Base.metadata.sorted_tables
        }


class SnapshotAtResponse:
    """Reads the database when the response starts, for the request made while `armed` is set."""

    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine
        self.armed = False
        self.at_response: dict[str, list[tuple[Any, ...]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watching(message: Message) -> None:
            if self.armed and message["type"] == "http.response.start":
                self.at_response = snapshot(self.engine)
            await send(message)

        await self.app(scope, receive, watching if scope["type"] == "http" else send)


@pytest.fixture(scope="module")
def built_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-flux")


@pytest.fixture()
def harness(settings: Settings, built_tiny_model: Path) -> Iterator[tuple[TestClient, SnapshotAtResponse]]:
    shutil.copytree(built_tiny_model, tiny_model_dir(settings))
    engine = make_engine(settings.sqlalchemy_url)
    wrapper = SnapshotAtResponse(create_app(settings), engine)
    with TestClient(wrapper) as client:
        yield client, wrapper
    engine.dispose()


Request = tuple[str, str, dict[str, Any]]
Case = Callable[[TestClient, Settings], Request]


def _character(client: TestClient, settings: Settings) -> str:
    return make_character(client, "Ada", 0)


def _with_image(client: TestClient) -> tuple[str, str]:
    character = make_character(client, "Bo", 1, captions=False)
    image = client.get("/api/images", params={"character_id": character}).json()["items"][0]["id"]
    return character, image


def _row(settings: Settings, row: Any) -> str:
    engine = make_engine(settings.sqlalchemy_url)
    with Session(engine) as db:
        db.add(row)
        db.commit()
        found = str(row.id)
    engine.dispose()
    return found


def _lora(settings: Settings, character: str | None) -> str:
    folder = settings.data_path / "loras" / "imported"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "some.safetensors"
    path.write_bytes(save({"transformer.proj_out.lora_A.weight": torch.zeros(2, 32)}))
    relative = "loras/imported/some.safetensors"
    row = Lora(character_id=character, name="some", source="imported", path=relative, bytes=path.stat().st_size)
    return _row(settings, row)


def _generation(settings: Settings, character: str) -> str:
    job = _row(settings, Job(kind="generation", status="succeeded", plugin="diffusers", character_id=character))
    row = Generation(job_id=job, character_id=character, plugin="diffusers", prompt="a portrait", seed=1,
                     width=64, height=64, steps=2, guidance=3.5, path="outputs/x.png", params={})  # fmt: skip
    return _row(settings, row)


def _kohya_lora() -> bytes:
    gen = torch.Generator().manual_seed(1)
    prefix = "lora_unet_single_blocks_0_linear2"
    state = {
        f"{prefix}.lora_down.weight": torch.randn(4, 32 + 4 * 32, generator=gen),
        f"{prefix}.lora_up.weight": torch.randn(32, 4, generator=gen),
        f"{prefix}.alpha": torch.tensor(4.0),
    }
    return save(state)


RENDER = {"width": 64, "height": 64, "steps": 2}

CASES: dict[tuple[str, str], Case] = {
    ("POST", "/api/auth/login"): lambda c, s: ("POST", "/api/auth/login", {"json": {"token": "x"}}),
    ("POST", "/api/auth/logout"): lambda c, s: ("POST", "/api/auth/logout", {}),
    ("POST", "/api/characters"): lambda c, s: ("POST", "/api/characters", {"json": {"name": "Cy"}}),
    ("PATCH", "/api/characters/{character_id}"): lambda c, s: (
        "PATCH", f"/api/characters/{_character(c, s)}", {"json": {"description": "tall"}}),
    ("DELETE", "/api/characters/{character_id}"): lambda c, s: ("DELETE", f"/api/characters/{_character(c, s)}", {}),
    ("POST", "/api/characters/{character_id}/images"): lambda c, s: (
        "POST", f"/api/characters/{_character(c, s)}/images", {"files": [("files", ("a.png", png(3), "image/png"))]}),
    ("POST", "/api/characters/{character_id}/captions/bulk"): lambda c, s: (
        "POST", f"/api/characters/{_with_image(c)[0]}/captions/bulk",
        {"json": {"action": "set_missing", "caption": "x"}}),
    ("POST", "/api/characters/{character_id}/captions/auto"): lambda c, s: (
        "POST", f"/api/characters/{_with_image(c)[0]}/captions/auto", {"json": {"scope": "all"}}),
    ("PATCH", "/api/images/{image_id}"): lambda c, s: (
        "PATCH", f"/api/images/{_with_image(c)[1]}", {"json": {"caption": "a photo"}}),
    ("DELETE", "/api/images/{image_id}"): lambda c, s: ("DELETE", f"/api/images/{_with_image(c)[1]}", {}),
    ("POST", "/api/logs"): lambda c, s: ("POST", "/api/logs", {"json": {"message": "boom"}}),
    ("POST", "/api/training/presets"): lambda c, s: (
        "POST", "/api/training/presets", {"json": {"name": "fast", "plugin": "flux-lora", "config": {"steps": 10}}}),
    ("DELETE", "/api/training/presets/{preset_id}"): lambda c, s: (
        "DELETE", "/api/training/presets/" + c.post("/api/training/presets", json={
            "name": "gone", "plugin": "flux-lora", "config": {"steps": 10}}).json()["id"], {}),
    ("POST", "/api/training"): lambda c, s: ("POST", "/api/training", {"json": {
        "character_id": make_character(c, "Di", 2), "plugin": "flux-lora", "config": SMALL}}),
    ("POST", "/api/training/estimate"): lambda c, s: ("POST", "/api/training/estimate", {"json": {
        "character_id": make_character(c, "Ed", 2), "plugin": "flux-lora", "config": SMALL}}),
    ("POST", "/api/generation"): lambda c, s: ("POST", "/api/generation", {"json": {"prompt": "a cat", **RENDER}}),
    ("POST", "/api/generation/grid"): lambda c, s: ("POST", "/api/generation/grid", {"json": {
        "prompts": ["a cat"], "seeds": [1], "include_base": True, **RENDER}}),
    ("POST", "/api/generations/{generation_id}/again"): lambda c, s: (
        "POST", f"/api/generations/{_generation(s, _character(c, s))}/again", {}),
    ("DELETE", "/api/generations/{generation_id}"): lambda c, s: (
        "DELETE", f"/api/generations/{_generation(s, _character(c, s))}", {}),
    ("POST", "/api/jobs/{job_id}/cancel"): lambda c, s: (
        "POST", f"/api/jobs/{_row(s, Job(kind='generation', status='queued', plugin='diffusers'))}/cancel", {}),
    ("POST", "/api/jobs/{job_id}/resume"): lambda c, s: (
        "POST", f"/api/jobs/{_row(s, Job(kind='training', status='cancelled', plugin='flux-lora'))}/resume", {}),
    ("DELETE", "/api/jobs/{job_id}"): lambda c, s: (
        "DELETE", f"/api/jobs/{_row(s, Job(kind='generation', status='succeeded', plugin='diffusers'))}", {}),
    ("POST", "/api/loras/import"): lambda c, s: (
        "POST", "/api/loras/import", {"params": {"base": "flux1-dev"},
                                      "files": {"files": ("k.safetensors", io.BytesIO(_kohya_lora()), "x/y")}}),
    ("PATCH", "/api/loras/{lora_id}"): lambda c, s: ("PATCH", f"/api/loras/{_lora(s, None)}", {"json": {"name": "b"}}),
    ("DELETE", "/api/loras/{lora_id}"): lambda c, s: ("DELETE", f"/api/loras/{_lora(s, None)}", {}),
    ("POST", "/api/loras/{lora_id}/evaluation"): lambda c, s: (
        "POST", f"/api/loras/{_lora(s, _character(c, s))}/evaluation", {"json": {}}),
    ("PUT", "/api/characters/{character_id}/default-lora"): lambda c, s: (
        "PUT", f"/api/characters/{_character(c, s)}/default-lora", {"json": {"lora_id": None}}),
    ("PUT", "/api/images/{image_id}/edit"): lambda c, s: (
        "PUT", f"/api/images/{_with_image(c)[1]}/edit", {"json": {"rotate": 90}}),
    ("DELETE", "/api/images/{image_id}/edit"): lambda c, s: ("DELETE", f"/api/images/{_with_image(c)[1]}/edit", {}),
    ("POST", "/api/images/{image_id}/edit/face"): lambda c, s: (
        "POST", f"/api/images/{_with_image(c)[1]}/edit/face", {"json": {}}),
    ("POST", "/api/jobs/{job_id}/rerun"): lambda c, s: (
        "POST", f"/api/jobs/{_row(s, Job(kind='generation', status='succeeded', plugin='diffusers'))}/rerun", {}),
    ("POST", "/api/training/settings/import"): lambda c, s: (
        "POST", "/api/training/settings/import", {"json": {"text": "plugin: flux-lora\nconfig:\n  steps: 10\n"}}),
}  # fmt: skip


def test_every_write_route_has_a_case(settings: Settings) -> None:
    routes = {
        (method.upper(), path)
        for path, operations in create_app(settings).openapi()["paths"].items()
        for method in operations
        if method.upper() in WRITE_METHODS
    }
    assert routes == set(CASES)


@pytest.mark.parametrize("route", sorted(CASES), ids=lambda r: f"{r[0]} {r[1]}")
def test_the_write_is_readable_when_the_response_starts(
    harness: tuple[TestClient, SnapshotAtResponse], settings: Settings, route: tuple[str, str]
) -> None:
    client, wrapper = harness
    method, url, options = CASES[route](client, settings)
    wrapper.armed = True
    response = client.request(method, url, **options)
    wrapper.armed = False
    assert response.status_code < 500, response.text
    assert wrapper.at_response is not None
    assert wrapper.at_response == snapshot(wrapper.engine), f"{method} {url} committed after its response started"
