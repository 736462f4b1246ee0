"""Bases through the API: a run, its LoRA and a generation on a second base end to end (one test per base); weights
missing in production named at submit; LoRAs of two bases never mixed; presets and the library keep the base."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from httpx import Response
from safetensors import safe_open
from safetensors.torch import save

from isengard.config import Settings
from isengard.db.migrate import upgrade
from isengard.models.bases import BASES, get_base
from isengard.models.locate import local_model_dir
from isengard.models.tiny import ensure_tiny_model, save_tiny_model
from isengard.worker.main import run_worker
from tests.conftest import make_settings
from tests.support.training_setup import SMALL, make_character

D = 32  # the tiny FLUX.1 model's attention width


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("base", ["flux1-krea-dev", "flux2-klein-4b", "flux2-klein-9b"])
def test_a_run_on_another_base_trains_records_and_generates_with_it(
    client: TestClient, settings: Settings, tmp_path: Path, base: str
) -> None:
    ensure_tiny_model(settings)  # the default base's, as `isengard up` builds it: generation's capability checks it
    character = make_character(client, f"Base {base}", 3)
    config = {**SMALL, "base": base, "steps": 20, "checkpoint_every": 10, "sample_every": 20}
    response = client.post("/api/training", json={"character_id": character, "config": config})
    assert response.status_code == 202, response.text
    assert run_worker(settings, burst=True) == 0
    done = client.get(f"/api/jobs/{response.json()['id']}").json()
    assert done["status"] == "succeeded", done
    assert done["result"]["validation_loss_end"] < done["result"]["validation_loss_start"]

    # The LoRA knows its base: the row, the library's filter, the downloaded file's header.
    mine = client.get("/api/loras", params={"base": base, "source": "trained"}).json()["items"]
    assert [item["base"] for item in mine] == [base]
    checkpoints = client.get("/api/loras", params={"base": base, "source": "checkpoint"}).json()["items"]
    assert len(checkpoints) == 1
    assert client.get("/api/loras", params={"base": "flux1-dev", "character_id": character}).json()["items"] == []
    download = tmp_path / "lora.safetensors"
    download.write_bytes(client.get(f"/api/loras/{mine[0]['id']}/file").content)
    with safe_open(str(download), framework="pt") as handle:
        assert handle.metadata()["base"] == base

    # Generation takes the LoRA's base; asking for another base with it is refused, naming both.
    refused = client.post("/api/generation", json={"prompt": "x", "base": "flux1-dev",
                                                   "loras": [{"lora_id": mine[0]["id"]}]})  # fmt: skip
    assert refused.status_code == 422 and base in refused.text and "flux1-dev" in refused.text
    job = client.post("/api/generation", json={"prompt": "[trigger] smiling", "width": 64, "height": 64, "steps": 2,
                                               "loras": [{"lora_id": mine[0]["id"]}]})  # fmt: skip
    assert job.status_code == 202, job.text
    run_worker(settings, burst=True)
    generated = client.get(f"/api/jobs/{job.json()['id']}").json()
    assert generated["status"] == "succeeded", generated["error"]

    # The distilled sibling, where the base has one: its own step count and guidance; elsewhere a 422 saying why.
    body = {"prompt": "x", "width": 64, "height": 64, "checkpoint": "distilled", "loras": [{"lora_id": mine[0]["id"]}]}
    distilled = client.post("/api/generation", json=body)
    defaults = get_base(base).distilled_defaults
    if defaults is None:
        assert distilled.status_code == 422 and "no distilled checkpoint" in distilled.text
        return
    assert distilled.status_code == 202, distilled.text
    run_worker(settings, burst=True)
    done = client.get(f"/api/jobs/{distilled.json()['id']}").json()
    assert done["status"] == "succeeded", done["error"]
    assert (done["config"]["steps"], done["config"]["guidance"]) == (defaults.sample_steps, defaults.guidance)


def _lora_file(header: dict[str, str]) -> bytes:
    tensors = {
        "transformer.transformer_blocks.0.attn.to_q.lora_A.weight": torch.zeros(4, D),
        "transformer.transformer_blocks.0.attn.to_q.lora_B.weight": torch.zeros(D, 4),
    }
    return save(tensors, metadata=header)


def test_imports_detect_the_base_and_two_bases_never_mix(client: TestClient, settings: Settings) -> None:
    def upload(header: dict[str, str], name: str, **params: str) -> Response:
        files = {"files": (f"{name}.safetensors", _lora_file(header), "application/octet-stream")}
        return client.post("/api/loras/import", files=files, params=params)

    krea = upload({"base_model": "black-forest-labs/FLUX.1-Krea-dev"}, "krea").json()
    assert krea["base"] == "flux1-krea-dev"

    # A FLUX.1 file without a header cannot tell dev from Krea (same keys and shapes), nor one whose header names
    # only the family (as ai-toolkit writes it): the importer asks.
    for header in ({}, {"ss_base_model_version": "flux.1"}):
        asked = upload(header, "plain")
        assert asked.status_code == 422, asked.text
        assert asked.json()["candidates"] == ["flux1-dev", "flux1-krea-dev"]
        assert "flux1-dev" in asked.json()["detail"] and "flux1-krea-dev" in asked.json()["detail"]
    # A base the file cannot be for is refused, naming both; a name the registry does not know too.
    wrong = upload({}, "plain", base="flux2-klein-4b")
    assert wrong.status_code == 422 and "flux2-klein-4b" in wrong.text and "flux1-dev or flux1-krea-dev" in wrong.text
    assert upload({}, "plain", base="sdxl").status_code == 422
    # When the header tells, the base given must be that one.
    told = upload({"base_model": "black-forest-labs/FLUX.1-Krea-dev"}, "told", base="flux1-dev")
    assert told.status_code == 422 and "flux1-krea-dev" in told.text and "flux1-dev" in told.text
    assert len(client.get("/api/loras").json()["items"]) == 1  # nothing half-imported
    assert len(list((settings.data_path / "loras").rglob("*.safetensors"))) == 1

    plain = upload({}, "plain", base="flux1-dev").json()
    assert plain["base"] == "flux1-dev"
    assert [item["id"] for item in client.get("/api/loras", params={"base": "flux1-krea-dev"}).json()["items"]] == [
        krea["id"]
    ]
    mixed = client.post("/api/generation", json={"prompt": "x", "loras": [{"lora_id": krea["id"]},
                                                                          {"lora_id": plain["id"]}]})  # fmt: skip
    assert mixed.status_code == 422
    assert "flux1-krea-dev" in mixed.json()["detail"] and "flux1-dev" in mixed.json()["detail"]


def test_presets_remember_their_base(client: TestClient) -> None:
    response = client.post("/api/training/presets", json={"name": "krea look", "config": {"base": "flux1-krea-dev"}})
    assert response.status_code == 201, response.text
    assert response.json()["base"] == "flux1-krea-dev"
    unknown = client.post("/api/training/presets", json={"name": "bad", "config": {"base": "sdxl"}})
    assert unknown.status_code == 422 and "unknown base" in unknown.text


@pytest.fixture()
def production(data_dir: Path, redis_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """Production mode with FLUX.1 [dev] complete (the tiny model stands in) and Krea missing its T5 encoder."""
    settings = make_settings(data_dir, redis_url=redis_url, mode="production")
    upgrade(settings.sqlalchemy_url)
    built = save_tiny_model(tmp_path / "built")
    shutil.copytree(built, local_model_dir(settings, "flux1-dev"))
    krea = local_model_dir(settings, "flux1-krea-dev")
    shutil.copytree(built, krea)
    shutil.rmtree(krea / "text_encoder_2")
    from isengard.api.app import create_app

    with TestClient(create_app(settings)) as client:
        yield client


def test_missing_weights_are_named_in_capabilities_and_refused_at_submit(production: TestClient) -> None:
    bases = {base["name"]: base for base in production.get("/api/capabilities").json()["bases"]}
    assert bases["flux1-dev"]["available"] is True
    krea = bases["flux1-krea-dev"]
    assert krea["available"] is False and krea["missing"] == ["text_encoder_2"]
    assert krea["download"].startswith("hf download black-forest-labs/FLUX.1-Krea-dev --local-dir ")
    assert "text_encoder_2" in krea["reason"]
    klein = bases["flux2-klein-4b"]
    assert klein["available"] is False and "hf download black-forest-labs/FLUX.2-klein-base-4B" in klein["reason"]

    character = make_character(production, "Prod", 1)
    refused = production.post("/api/training", json={"character_id": character, "config": {"base": "flux1-krea-dev"}})
    assert refused.status_code == 422
    assert "flux1-krea-dev" in refused.json()["detail"] and "text_encoder_2" in refused.json()["detail"]
    preset = production.post("/api/training/presets", json={"name": "klein", "config": {"base": "flux2-klein-4b"}})
    assert preset.status_code == 201, preset.text
    from_preset = production.post("/api/training", json={"character_id": character, "preset_id": preset.json()["id"]})
    assert from_preset.status_code == 422 and "preset 'klein' needs the base flux2-klein-4b" in from_preset.text
    assert production.get("/api/jobs").json()["total"] == 0


def _engine_base_defaults(api: TestClient) -> dict[str, dict[str, object]]:
    plugins = {plugin["name"]: plugin for plugin in api.get("/api/training/plugins").json()}
    return plugins["flux-lora"]["base_defaults"]  # type: ignore[no-any-return]


def test_each_base_gives_the_form_its_recommended_settings(client: TestClient, production: TestClient) -> None:
    # Production: the registry's full-size settings of each base, in the engine's field names.
    full = _engine_base_defaults(production)
    assert set(full) == set(BASES)
    for name, values in full.items():
        defaults = get_base(name).defaults
        assert values["sample_steps"] == defaults.sample_steps and values["sample_guidance"] == defaults.guidance
        assert values["sample_resolution"] == defaults.resolution and max(values["resolutions"]) == defaults.resolution  # type: ignore[call-overload]
        assert values.get("guidance_scale") == defaults.training_guidance
    assert full["flux2-klein-4b"]["sample_steps"] != full["flux1-dev"]["sample_steps"]
    # Fast-test: the tiny model keeps the engine's small sizes and step counts; guidance still follows the base.
    tiny = _engine_base_defaults(client)
    assert not {"sample_steps", "sample_resolution", "resolutions"} & {key for v in tiny.values() for key in v}
    klein = get_base("flux2-klein-4b").defaults.guidance
    assert tiny["flux2-klein-4b"]["sample_guidance"] == klein

    # A run on a base gets them for the fields it leaves out (the API and the CLI as the form); given ones win.
    character = make_character(client, "Defaults", 1)

    def resolved(config: dict[str, object]) -> dict[str, object]:
        response = client.post("/api/training/estimate", json={"character_id": character, "config": config})
        assert response.status_code == 200, response.text
        return response.json()["config"]  # type: ignore[no-any-return]

    assert resolved({"base": "flux2-klein-4b"})["sample_guidance"] == klein
    assert resolved({"base": "flux2-klein-4b", "sample_guidance": 2.0})["sample_guidance"] == 2.0
    assert resolved({})["sample_guidance"] == get_base("flux1-dev").defaults.guidance
