"""Untrusted LoRA files: the safetensors header is checked before anything is loaded."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from isengard.api.services.loras.files import check_safetensors_header, read_lora_file
from isengard.api.services.loras.formats import LoraFormatError


def _valid(path: Path) -> Path:
    save_file({"transformer.proj_out.lora_A.weight": torch.ones(2, 4)}, str(path), metadata={"name": "x"})
    return path


def test_a_valid_file_reads_with_its_metadata(tmp_path: Path) -> None:
    tensors, metadata = read_lora_file(_valid(tmp_path / "ok.safetensors"))
    assert metadata == {"name": "x"}
    assert torch.equal(tensors["transformer.proj_out.lora_A.weight"], torch.ones(2, 4))


def test_pickles_are_refused_without_being_loaded(tmp_path: Path) -> None:
    zipped = tmp_path / "lora.pt"
    torch.save({"w": torch.ones(2)}, zipped)
    with pytest.raises(LoraFormatError, match="pickle"):
        check_safetensors_header(zipped)
    raw = tmp_path / "raw.safetensors"
    raw.write_bytes(pickle.dumps({"w": [1, 2]}, protocol=4))
    with pytest.raises(LoraFormatError, match="pickle"):
        check_safetensors_header(raw)


def test_truncated_files_are_refused(tmp_path: Path) -> None:
    data = _valid(tmp_path / "ok.safetensors").read_bytes()
    for cut in (4, 20, len(data) - 3):
        truncated = tmp_path / f"cut{cut}.safetensors"
        truncated.write_bytes(data[:cut])
        with pytest.raises(LoraFormatError, match=r"truncated|too short|cut off"):
            check_safetensors_header(truncated)


def test_a_huge_header_is_refused_before_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(LoraFormatError, match="header claims"):
        check_safetensors_header(huge)


def test_headers_that_lie_are_refused(tmp_path: Path) -> None:
    def write(header: object, payload: bytes = b"\0" * 32) -> Path:
        raw = json.dumps(header).encode()
        path = tmp_path / "lie.safetensors"
        path.write_bytes(struct.pack("<Q", len(raw)) + raw + payload)
        return path

    with pytest.raises(LoraFormatError, match="points outside"):
        check_safetensors_header(write({"a": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}))
    with pytest.raises(LoraFormatError, match="unknown dtype"):
        check_safetensors_header(write({"a": {"dtype": "X9", "shape": [1], "data_offsets": [0, 4]}}))
    with pytest.raises(LoraFormatError, match="floating point"):
        check_safetensors_header(write({"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}))
    with pytest.raises(LoraFormatError, match="not a JSON object"):
        check_safetensors_header(write([1, 2]))
    bad_json = tmp_path / "bad.safetensors"
    bad_json.write_bytes(struct.pack("<Q", 5) + b"{nope" + b"\0" * 8)
    with pytest.raises(LoraFormatError, match="not valid JSON"):
        check_safetensors_header(bad_json)
