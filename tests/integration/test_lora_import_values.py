"""LoRA imports whose numbers or header cannot work are refused with a 4xx and a reason, never a 500 or a stored
LoRA: a header nested thousands of levels deep, alphas of 0 or 2 elements, rank 0, NaN alpha, NaN weights; a
trigger word the library cannot store is dropped rather than stored or failing the import."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import save

from isengard.api.support.text import column_max_length
from isengard.config import Settings
from isengard.db.models import Lora
from tests.integration.test_loras_api import D, _client, _import

pytestmark = pytest.mark.databases


@pytest.fixture(scope="module")
def built_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from isengard.models.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-flux")


@pytest.fixture()
def api(settings: Settings, built_tiny_model: Path) -> Iterator[TestClient]:
    yield from _client(settings, built_tiny_model)


def _lora(rank: int = 4, alpha: torch.Tensor | None = None, fill: float | None = None, **metadata: str) -> bytes:
    gen = torch.Generator().manual_seed(3)
    down = torch.randn(rank, D, generator=gen)
    up = torch.randn(D, rank, generator=gen)
    if fill is not None:
        down = torch.full_like(down, fill)
        up = torch.full_like(up, fill)
    state = {
        "transformer.transformer_blocks.0.attn.to_k.lora_A.weight": down,
        "transformer.transformer_blocks.0.attn.to_k.lora_B.weight": up,
    }
    if alpha is not None:
        state["transformer.transformer_blocks.0.attn.to_k.alpha"] = alpha
    return save(state, metadata=metadata or None)


def _nested_header(depth: int) -> bytes:
    header = ("[" * depth + "]" * depth).encode()
    return struct.pack("<Q", len(header)) + header


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (_nested_header(100_000), "nested too deeply"),
        (_lora(alpha=torch.zeros(0)), "holds 0 values"),
        (_lora(alpha=torch.tensor([1.0, 2.0])), "holds 2 values"),
        (_lora(alpha=torch.tensor(float("nan"))), "alpha must be a finite number"),
        (_lora(rank=0), "rank of 1 or more"),
        (_lora(fill=float("nan")), "NaN"),
    ],
    ids=["nested-header", "alpha-0-elements", "alpha-2-elements", "nan-alpha", "rank-0", "all-nan"],
)
def test_unusable_numbers_are_refused_with_a_reason(api: TestClient, content: bytes, reason: str) -> None:
    status, body = _import(api, content, "bad.safetensors")
    assert status == 422, body
    assert reason in str(body["detail"])
    assert api.get("/api/loras").json()["items"] == []


def test_a_metadata_trigger_word_too_long_for_the_library_is_dropped(api: TestClient) -> None:
    too_long = "w" * (column_max_length(Lora.trigger_word) + 1)
    status, body = _import(api, _lora(trigger_word=too_long), "long.safetensors", base="flux1-dev")
    assert status == 201, body
    assert body["trigger_word"] is None
    status, body = _import(api, _lora(trigger_word="fits"), "fits.safetensors", base="flux1-dev")
    assert status == 201 and body["trigger_word"] == "fits"


def test_a_valid_header_still_parses(api: TestClient) -> None:
    # The depth guard is about recursion, not size: a normal header of many tensors imports.
    status, body = _import(api, _lora(), "ok.safetensors", base="flux1-dev")
    assert status == 201, body
    assert json.dumps(body)  # a plain JSON answer
