"""The LoRA library over HTTP: list and filters, details with the source job, rename, download, delete, and import
of each supported layout (then used for a real generation) or refusal with a reason."""

from __future__ import annotations

import io
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load_file, save
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from isengard.config import Settings
from isengard.db.models import Job, JobArtifact, Lora
from isengard.models.locate import tiny_model_dir
from isengard.models.tiny import save_tiny_model
from isengard.worker.main import run_worker
from tests.conftest import make_settings

D = 32  # the tiny model's attention width


@pytest.fixture(scope="module")
def built_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-flux")


def _client(settings: Settings, built: Path) -> Iterator[TestClient]:
    shutil.copytree(built, tiny_model_dir(settings))
    from isengard.api.app import create_app

    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture()
def api(settings: Settings, built_tiny_model: Path) -> Iterator[TestClient]:
    yield from _client(settings, built_tiny_model)


def _character(api: TestClient, name: str = "Bo", trigger: str = "boxq") -> str:
    response = api.post("/api/characters", json={"name": name, "trigger_word": trigger})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _rows(settings: Settings, character_id: str) -> tuple[str, str, str]:
    """A training job with a final LoRA and a checkpoint (as the worker records them), plus an imported LoRA."""
    engine = create_engine(settings.sqlalchemy_url)
    with Session(engine) as db:
        job = Job(kind="training", status="succeeded", plugin="flux-lora", character_id=character_id, name="run A")
        db.add(job)
        db.flush()
        ids = []
        for source, step in (("trained", None), ("checkpoint", 50), ("imported", None)):
            folder = settings.data_path / "loras" / character_id / (job.id if source != "imported" else "imported")
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{source}.safetensors"
            path.write_bytes(save({"transformer.proj_out.lora_A.weight": torch.zeros(2, D)}))
            relative = path.relative_to(settings.data_path).as_posix()
            row = Lora(
                character_id=character_id,
                job_id=job.id if source != "imported" else None,
                name=f"{source} lora",
                path=relative,
                source=source,
                step=step,
                bytes=path.stat().st_size,
            )
            db.add(row)
            if source != "imported":
                db.add(JobArtifact(job_id=job.id, kind="lora", path=relative, name=path.name))
            db.flush()
            ids.append(row.id)
        db.commit()
        return ids[0], ids[1], ids[2]


def test_list_filter_get_rename_download_delete(api: TestClient, settings: Settings) -> None:
    character = _character(api)
    other = _character(api, "Cy", "cyxq")
    trained, checkpoint, imported = _rows(settings, character)
    _rows(settings, other)
    everything = api.get("/api/loras").json()["items"]
    assert len(everything) == 6
    mine = api.get("/api/loras", params={"character_id": character}).json()["items"]
    assert {item["id"] for item in mine} == {trained, checkpoint, imported}
    assert [
        i["id"]
        for i in api.get("/api/loras", params={"character_id": character, "source": "checkpoint"}).json()["items"]
    ] == [checkpoint]
    job_id = api.get(f"/api/loras/{trained}").json()["job_id"]
    by_job = api.get("/api/loras", params={"job_id": job_id}).json()["items"]
    assert {item["id"] for item in by_job} == {trained, checkpoint}
    first = api.get("/api/loras", params={"limit": 4}).json()
    rest = api.get("/api/loras", params={"limit": 4, "cursor": first["next_cursor"]}).json()
    assert len(first["items"]) == 4 and len(rest["items"]) == 2 and rest["next_cursor"] is None

    detail = api.get(f"/api/loras/{checkpoint}").json()
    assert detail["job"]["name"] == "run A" and detail["job"]["status"] == "succeeded" and detail["step"] == 50
    assert api.get(f"/api/loras/{'0' * 32}").status_code == 404

    renamed = api.patch(f"/api/loras/{trained}", json={"name": "Bo v1 / final", "trigger_word": "bo_v1"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Bo v1 / final"
    assert api.patch(f"/api/loras/{trained}", json={"name": ""}).status_code == 422

    download = api.get(f"/api/loras/{trained}/file")
    assert download.status_code == 200
    # Renamed by a person: downloaded under that name (one slug rule for every download).
    assert 'filename="bo_v1_final.safetensors"' in download.headers["content-disposition"]
    named = api.get(f"/api/loras/{checkpoint}/file").headers["content-disposition"]
    assert 'filename="bo-run_a-step50.safetensors"' in named
    assert "transformer.proj_out.lora_A.weight" in load_file_bytes(download.content)

    file_path = settings.data_path / "loras" / character / job_id / "checkpoint.safetensors"
    assert file_path.exists()
    assert api.delete(f"/api/loras/{checkpoint}").status_code == 204
    assert not file_path.exists()
    assert api.get(f"/api/loras/{checkpoint}").status_code == 404
    with Session(create_engine(settings.sqlalchemy_url)) as db:
        assert db.query(JobArtifact).filter_by(path=file_path.relative_to(settings.data_path).as_posix()).count() == 0
    # The other LoRAs and files are untouched.
    assert (settings.data_path / "loras" / character / job_id / "trained.safetensors").exists()
    assert len(api.get("/api/loras").json()["items"]) == 5


def test_deleting_a_lora_a_job_still_needs_is_refused_with_the_reason(api: TestClient, settings: Settings) -> None:
    character = _character(api)
    trained, checkpoint, _ = _rows(settings, character)
    engine = create_engine(settings.sqlalchemy_url)
    with Session(engine) as db:
        waiting = Job(
            kind="generation", status="queued", plugin="diffusers", character_id=character, name="a portrait",
            payload={"loras": [{"lora_id": trained, "weight": 1.0}]},
        )  # fmt: skip
        db.add(waiting)
        producing = db.get(Job, db.get(Lora, checkpoint).job_id)  # type: ignore[union-attr]
        assert producing is not None
        producing.status = "running"
        db.commit()
        waiting_id, producing_id = waiting.id, producing.id
    refused = api.delete(f"/api/loras/{trained}")
    assert refused.status_code == 409
    assert "used by generation job 'a portrait' (queued)" in refused.json()["detail"]
    refused = api.delete(f"/api/loras/{checkpoint}")
    assert refused.status_code == 409 and "used by training job 'run A' (running)" in refused.json()["detail"]
    assert len(api.get("/api/loras", params={"character_id": character}).json()["items"]) == 3
    with Session(engine) as db:
        db.get(Job, waiting_id).status = "cancelled"  # type: ignore[union-attr]
        db.get(Job, producing_id).status = "succeeded"  # type: ignore[union-attr]
        db.commit()
    assert api.delete(f"/api/loras/{trained}").status_code == 204


def load_file_bytes(content: bytes) -> list[str]:
    from safetensors.torch import load

    return list(load(content))


def _kohya_bytes(alpha: float = 2.0) -> bytes:
    gen = torch.Generator().manual_seed(1)
    state = {}
    for name, out, inp in (("double_blocks_0_img_attn_qkv", 3 * D, D), ("single_blocks_1_linear1", 7 * D, D),
                           ("double_blocks_1_txt_mlp_2", D, 4 * D)):  # fmt: skip
        state[f"lora_unet_{name}.lora_down.weight"] = torch.randn(4, inp, generator=gen) * 0.5
        state[f"lora_unet_{name}.lora_up.weight"] = torch.randn(out, 4, generator=gen) * 0.5
        state[f"lora_unet_{name}.alpha"] = torch.tensor(alpha)
    return save(state, metadata={"ss_trigger_word": "kohyaxq"})


def _peft_bytes(prefix: str, down: str, up: str) -> bytes:
    gen = torch.Generator().manual_seed(2)
    state = {
        f"{prefix}transformer_blocks.0.attn.to_k.{down}.weight": torch.randn(4, D, generator=gen),
        f"{prefix}transformer_blocks.0.attn.to_k.{up}.weight": torch.randn(D, 4, generator=gen),
        f"{prefix}single_transformer_blocks.0.proj_out.{down}.weight": torch.randn(4, 5 * D, generator=gen),
        f"{prefix}single_transformer_blocks.0.proj_out.{up}.weight": torch.randn(D, 4, generator=gen),
    }
    return save({k: v.to(torch.bfloat16) for k, v in state.items()})


def _import(
    api: TestClient, content: bytes, name: str = "x.safetensors", **params: str
) -> tuple[int, dict[str, object]]:
    response = api.post(
        "/api/loras/import", params=params, files={"files": (name, io.BytesIO(content), "application/octet-stream")}
    )
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("content", "layout"),
    [
        (_kohya_bytes(), "kohya"),
        (_peft_bytes("transformer.", "lora_A", "lora_B"), "diffusers"),
        (_peft_bytes("diffusion_model.", "lora_down", "lora_up"), "ai-toolkit"),
    ],
)
def test_import_each_layout_then_generate_with_it(
    api: TestClient, settings: Settings, content: bytes, layout: str
) -> None:
    character = _character(api)
    # Files of FLUX.1's shapes without a header naming dev or Krea: the person says which.
    status, body = _import(api, content, "my style.safetensors", character_id=character, base="flux1-dev")
    assert status == 201, body
    assert body["source"] == "imported" and body["meta"]["format"] == layout  # type: ignore[index]
    assert body["name"] == "my style" and body["character_id"] == character
    stored = settings.data_path / "loras" / character / "imported" / f"{body['id']}.safetensors"
    keys = list(load_file(str(stored)))
    assert keys and all(k.startswith("transformer.") for k in keys)
    assert all(k.endswith((".lora_A.weight", ".lora_B.weight", ".alpha")) for k in keys)
    if layout == "kohya":
        assert body["trigger_word"] == "kohyaxq" and body["alpha"] == 2.0 and body["rank"] == 4
        assert "transformer.transformer_blocks.0.attn.to_v.lora_B.weight" in keys
    # The imported LoRA works in a real generation.
    job = api.post("/api/generation", json={"prompt": "x", "width": 64, "height": 64, "steps": 1, "seed": 3,
                                            "loras": [{"lora_id": body["id"]}]})  # fmt: skip
    assert job.status_code == 202, job.text
    assert run_worker(settings, burst=True, worker_id="w") == 0
    assert api.get(f"/api/jobs/{job.json()['id']}").json()["status"] == "succeeded"


def test_bad_files_are_refused_with_a_reason_and_leave_nothing(api: TestClient, settings: Settings) -> None:
    pickled = io.BytesIO()
    torch.save({"w": torch.ones(2)}, pickled)
    good = _kohya_bytes()
    sd_unet = save({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(2, 2),
                    "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(2, 2)})  # fmt: skip
    unknown = save({"model.layers.0.weight": torch.zeros(2, 2)})
    full_size = save({"lora_unet_double_blocks_0_img_attn_proj.lora_down.weight": torch.zeros(4, 3072),
                      "lora_unet_double_blocks_0_img_attn_proj.lora_up.weight": torch.zeros(3072, 4)})  # fmt: skip
    cases = [
        (pickled.getvalue(), "pickle"),
        (good[:100], "truncated"),
        (struct.pack("<Q", 2**50) + b"{}", "header claims"),
        (sd_unet, "Stable Diffusion"),
        (unknown, "unknown LoRA key layout"),
    ]
    for content, reason in cases:
        status, body = _import(api, content, "bad.safetensors")
        assert status == 422, (reason, body)
        assert reason in str(body["detail"]), body
    status, body = _import(api, good, character_id="f" * 32)
    assert status == 422 and "no character" in str(body["detail"])
    assert api.get("/api/loras").json()["items"] == []
    # A readable LoRA whose shapes fit no base here (a full-size FLUX.1 file beside the tiny models): kept as of an
    # unknown base, and refused for generation with the reason.
    status, body = _import(api, full_size, "full.safetensors")
    assert status == 201 and body["base"] == "unknown", body
    assert any("fit no known base" in warning for warning in body["meta"]["warnings"])
    refused = api.post("/api/generation", json={"prompt": "x", "loras": [{"lora_id": body["id"]}]})
    assert refused.status_code == 422 and "unknown base" in refused.json()["detail"]
    assert api.delete(f"/api/loras/{body['id']}").status_code == 204
    assert not list((settings.data_path / "loras").rglob("*.safetensors"))
    assert not list(settings.data_path.joinpath("tmp").iterdir())


def test_uploads_over_the_size_limit_are_refused(data_dir: Path, redis_url: str, built_tiny_model: Path) -> None:
    from isengard.db.migrate import upgrade

    settings = make_settings(data_dir, redis_url=redis_url, max_lora_upload_bytes=4096)
    upgrade(settings.sqlalchemy_url)
    for api in _client(settings, built_tiny_model):
        status, body = _import(api, _kohya_bytes() + b"\0" * 8192)
        assert status == 413 and "larger than the limit" in str(body["detail"])
        assert not list(settings.data_path.joinpath("tmp").iterdir())
