"""Training settings as files: a run's and a preset's settings exported as YAML import back into the same config;
bad files get a clear 422; a run exports as an ai-toolkit job file with its settings under ai-toolkit's names."""

from __future__ import annotations

from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from tests.support.training_setup import SMALL, make_character


def _queued_run(client: TestClient, config: dict[str, object]) -> dict[str, object]:
    character = make_character(client, "Settings Person", 2)
    answer = client.post("/api/training", json={"character_id": character, "config": config, "name": "Files run"})
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def test_a_runs_settings_round_trip_through_a_yaml_file(client: TestClient) -> None:
    run = _queued_run(client, SMALL)
    exported = client.get(f"/api/training/runs/{run['id']}/settings.yaml")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/yaml")
    assert exported.headers["content-disposition"].endswith('-settings.yaml"')
    document = yaml.safe_load(exported.text)
    assert document["plugin"] == "flux-lora" and document["config"] == run["config"]

    imported = client.post("/api/training/settings/import", json={"text": exported.text})
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"plugin": "flux-lora", "name": "Files run", "config": run["config"]}

    # A file edited by hand: only some settings, the rest from the plugin's defaults.
    defaults = {p["name"]: p for p in client.get("/api/training/plugins").json()}["flux-lora"]["defaults"]
    partial = client.post("/api/training/settings/import", json={"text": "config:\n  rank: 8\n  steps: 30\n"})
    assert partial.status_code == 200, partial.text
    assert partial.json()["config"] == {**defaults, "rank": 8, "steps": 30}


def test_a_presets_settings_export_and_import(client: TestClient) -> None:
    preset = client.post("/api/training/presets", json={"name": "Quick faces", "config": {"rank": 4, "steps": 25}})
    assert preset.status_code == 201, preset.text
    exported = client.get(f"/api/training/presets/{preset.json()['id']}/settings.yaml")
    assert exported.status_code == 200
    assert 'filename="quick_faces.yaml"' in exported.headers["content-disposition"]
    imported = client.post("/api/training/settings/import", json={"text": exported.text}).json()
    assert imported["name"] == "Quick faces"
    assert imported["config"]["rank"] == 4 and imported["config"]["steps"] == 25


def test_bad_settings_files_get_a_clear_422(client: TestClient) -> None:
    cases = [
        ("config:\n  rank: [8\n", "not valid YAML (line"),
        ("- just\n- a list\n", "holds no settings"),
        ("plugin: nope\nconfig: {}\n", "no training plugin named 'nope'"),
        ("config: 12\n", "'config' must be a mapping"),
        ("config:\n  rank: 0\n", "config.rank"),
        ("config:\n  bogus: 1\n", "config.bogus"),
    ]
    for text, message in cases:
        answer = client.post("/api/training/settings/import", json={"text": text})
        assert answer.status_code == 422, (text, answer.text)
        assert message in answer.json()["detail"], (text, answer.json())
    assert client.post("/api/training/settings/import", json={"text": ""}).status_code == 422
    assert client.post("/api/training/settings/import", json={"text": "x" * 70_000}).status_code == 422
    assert client.get("/api/training/runs/" + "f" * 32 + "/settings.yaml").status_code == 404


def test_a_run_exports_as_an_ai_toolkit_job_file(client: TestClient, data_dir: Path) -> None:
    # 96 is no multiple of 64: ai-toolkit would refuse it, so the file keeps ai-toolkit's own resolutions.
    run = _queued_run(client, {**SMALL, "resolutions": [64, 96]})
    exported = client.get(f"/api/training/runs/{run['id']}/ai-toolkit.yaml")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-disposition"].endswith('-ai-toolkit.yaml"')
    assert "resolutions" in exported.text.splitlines()[1]  # the comment says which settings were left out
    process = yaml.safe_load(exported.text)["config"]["process"][0]
    config = run["config"]
    assert isinstance(config, dict)
    assert process["train"]["steps"] == config["steps"]
    assert process["train"]["lr"] == config["learning_rate"]
    assert process["network"]["linear"] == config["rank"]
    assert process["sample"]["prompts"] == config["sample_prompts"]
    assert process["trigger_word"] == "zxq"
    dataset = Path(process["datasets"][0]["folder_path"])
    # The dataset folder holds the photos beside their captions, as ai-toolkit reads them.
    assert dataset.is_dir() and dataset.is_relative_to(data_dir.resolve())
    assert sorted(p.suffix for p in dataset.iterdir()).count(".txt") == 2

    assert client.get("/api/training/runs/" + "f" * 32 + "/ai-toolkit.yaml").status_code == 404
