"""`isengard generate` against a real API server (uvicorn on 127.0.0.1) and a real worker."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from isengard.api.app import create_app
from isengard.cli import build_parser
from isengard.config import Settings
from isengard.db.models import Character, Job, Lora
from isengard.models.locate import tiny_model_dir
from isengard.models.tiny import save_tiny_model
from isengard.redis_server import free_port
from isengard.worker.main import run_worker
from tests.support.image_jobs import make_test_lora
from tests.support.live_server import serve_in_thread


@pytest.fixture()
def api_url(settings: Settings, tmp_path: Path) -> Iterator[str]:
    save_tiny_model(tmp_path / "tiny")
    shutil.copytree(tmp_path / "tiny", tiny_model_dir(settings))
    with serve_in_thread(create_app(settings)) as url:
        yield url


def test_generate_command_writes_the_images(
    api_url: str, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine(settings.sqlalchemy_url)
    with Session(engine) as db:
        character = Character(name="Ivy", name_key="ivy", trigger_word="ivyxq")
        db.add(character)
        db.flush()
        path = make_test_lora(
            tiny_model_dir(settings), settings.data_path / "loras" / character.id / "m" / "a.safetensors"
        )
        db.add(Lora(character_id=character.id, name="Ivy v1", path=path.relative_to(settings.data_path).as_posix()))
        db.commit()
    out = tmp_path / "images"
    argv = ["generate", "--lora", "ivy V1:0.7", "a red coat", "--seed", "5", "-n", "2", "--width", "64",
            "--height", "64", "--steps", "2", "--out", str(out), "--api", api_url]  # fmt: skip
    args = build_parser().parse_args(argv)
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(args.func(args)))
    runner.start()
    deadline = time.monotonic() + 30
    # The worker drains what is on the stream and stops, so start it once the job is enqueued (not just saved).
    with Session(engine) as db:
        while not db.scalars(select(Job).where(Job.stream_id.is_not(None))).first() and time.monotonic() < deadline:
            time.sleep(0.1)
            db.expire_all()
    assert run_worker(settings, burst=True, worker_id="cli-test") == 0
    runner.join(timeout=60)
    assert result == [0]
    written = sorted(out.glob("*.png"))
    # One naming with the web: the name the gallery's download gives, `<character>-<seed>.png`.
    import httpx

    page = httpx.get(f"{api_url}/api/generations", params={"limit": 10}).json()["items"]
    web_names = sorted(
        httpx.get(f"{api_url}{item['url']}").headers["content-disposition"].split('filename="')[1].rstrip('"')
        for item in page
    )
    assert [p.name for p in written] == web_names == ["ivy-5.png", "ivy-6.png"]
    with Image.open(written[0]) as image:
        assert image.text["prompt"] == "ivyxq, a red coat" and '"weight": 0.7' in image.text["loras"]
    assert str(written[0]) in capsys.readouterr().out


def test_unknown_lora_is_a_clear_error(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["generate", "--lora", "nobody", "x", "--api", api_url])
    assert args.func(args) == 1
    assert "no LoRA or character named 'nobody'" in capsys.readouterr().err


def _lora_row(db: Session, settings: Settings, character_id: str | None, name: str, source: str, when: int) -> str:
    path = settings.data_path / "loras" / (character_id or "x") / f"{name}-{when}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    row = Lora(
        character_id=character_id, name=name, source=source, path=path.relative_to(settings.data_path).as_posix(),
        created_at=datetime(2026, 11, when, tzinfo=UTC),
    )  # fmt: skip
    db.add(row)
    db.flush()
    return row.id


def test_a_character_name_resolves_to_its_newest_lora_and_ambiguity_lists_the_choices(
    api_url: str, settings: Settings
) -> None:
    from isengard.cli.client import ApiError, IsengardClient
    from isengard.cli.generate import resolve_lora

    with Session(create_engine(settings.sqlalchemy_url)) as db:
        ada = Character(name="Ada", name_key="ada", trigger_word="adaxq")
        db.add(ada)
        db.flush()
        _lora_row(db, settings, ada.id, "Ada run 1", "trained", 1)
        newest = _lora_row(db, settings, ada.id, "Ada run 2", "trained", 3)
        _lora_row(db, settings, ada.id, "Ada run 2 step 500", "checkpoint", 4)
        twins = [_lora_row(db, settings, None, "twin", "imported", day) for day in (5, 6)]
        db.commit()
    client = IsengardClient(api_url)
    assert resolve_lora(client, "Ada") == {"lora_id": newest, "weight": 1.0}
    assert resolve_lora(client, "ada:0.6") == {"lora_id": newest, "weight": 0.6}
    with pytest.raises(ApiError) as ambiguous:
        resolve_lora(client, "twin")
    assert ambiguous.value.status == 409
    assert all(twin in str(ambiguous.value) for twin in twins)
    assert resolve_lora(client, twins[0])["lora_id"] == twins[0]


def test_unreachable_api_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    args = build_parser().parse_args(["generate", "x", "--api", url])
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert f"cannot reach the Isengard API at {url}" in err
    assert "--api URL" in err and "ISENGARD_URL" in err  # the error names the way to another address


def test_the_cli_finds_an_app_on_another_port_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ISENGARD_URL", "ISENGARD_API_URL", "ISENGARD_HOST", "ISENGARD_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert build_parser().parse_args(["generate", "x"]).api == "http://127.0.0.1:8000"
    # The port `isengard up` was started with, from the same environment.
    monkeypatch.setenv("ISENGARD_PORT", "9123")
    assert build_parser().parse_args(["generate", "x"]).api == "http://127.0.0.1:9123"
    monkeypatch.setenv("ISENGARD_URL", "http://studio.lan:7000/")
    assert build_parser().parse_args(["generate", "x"]).api == "http://studio.lan:7000/"
    assert build_parser().parse_args(["caption", "--character", "a", "--api", "http://h:1"]).api == "http://h:1"


def test_a_partial_or_misspelt_lora_name_is_found_or_suggested(api_url: str, settings: Settings) -> None:
    from isengard.cli.client import ApiError, IsengardClient
    from isengard.cli.generate import resolve_lora

    with Session(create_engine(settings.sqlalchemy_url)) as db:
        ada = Character(name="Ada Lovelace", name_key="ada lovelace", trigger_word="ada_lovelace")
        grace = Character(name="Grace Hopper", name_key="grace hopper", trigger_word="grace_hopper")
        db.add_all([ada, grace])
        db.flush()
        newest = _lora_row(db, settings, ada.id, "Ada Lovelace run 1", "trained", 3)
        _lora_row(db, settings, grace.id, "Grace Hopper run 1", "trained", 4)
        db.commit()
    client = IsengardClient(api_url)
    assert resolve_lora(client, "Ada") == {"lora_id": newest, "weight": 1.0}  # the start of a character's name
    assert resolve_lora(client, "lovelace:0.5") == {"lora_id": newest, "weight": 0.5}  # or any word of it
    with pytest.raises(ApiError) as misspelt:
        resolve_lora(client, "Ada Lovlace")
    assert misspelt.value.status == 404 and "did you mean 'Ada Lovelace'" in str(misspelt.value)
