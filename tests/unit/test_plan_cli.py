"""`isengard plan`: each profile's estimate, whether it fits the given GPU, and what auto picks."""

from __future__ import annotations

import json

import pytest

from isengard.cli.main import main
from isengard.models.memory_plan import GIB


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    assert main(["plan", "--json", *args]) == 0
    body: dict = json.loads(capsys.readouterr().out)  # type: ignore[type-arg]
    return body


def test_plan_json_lists_every_profile_and_the_auto_choice(capsys: pytest.CaptureFixture[str]) -> None:
    body = run_json(capsys, "--gpu-memory", "12", "--resolution", "1024")

    assert [p["profile"] for p in body["profiles"]] == ["bf16", "int8", "nf4", "nf4-offload"]
    assert body["gpu_bytes"] == 12 * GIB
    for entry in body["profiles"]:
        assert entry["fits"] == (entry["estimated_peak_bytes"] <= 12 * GIB)
    assert body["auto"] == next(p["profile"] for p in body["profiles"] if p["fits"])


def test_plan_follows_resolution_batch_and_rank(capsys: pytest.CaptureFixture[str]) -> None:
    def peak(*args: str) -> int:
        return int(run_json(capsys, *args)["profiles"][2]["estimated_peak_bytes"])

    base = peak("--resolution", "512")
    assert peak("--resolution", "1024") > base
    assert peak("--resolution", "512", "--batch-size", "2") > base
    assert peak("--resolution", "512", "--rank", "64") > base


def test_plan_table_marks_auto(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--gpu-memory", "24"]) == 0
    out = capsys.readouterr().out
    chosen = next(line.split()[0] for line in out.splitlines() if line.endswith("<- auto"))
    assert f"auto: {chosen} (fits your 24 GB GPU with {chosen}" in out


def test_plan_without_a_gpu_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    body = run_json(capsys)  # this test machine has no CUDA
    assert body["gpu_bytes"] is None and body["auto"] is None
    assert all(p["fits"] is None for p in body["profiles"])


@pytest.mark.parametrize("args", [["--gpu-memory", "-1"], ["--resolution", "100"], ["--batch-size", "0"]])
def test_plan_refuses_bad_input(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    assert main(["plan", *args]) == 2
    assert capsys.readouterr().err.startswith("isengard plan: ")
