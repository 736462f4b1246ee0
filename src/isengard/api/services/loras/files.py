"""Reading LoRA files that come from outside: safetensors only, the header checked before anything is loaded.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and
byte range, then the raw bytes. Checking that structure first means a pickle (which can run code when loaded), a
truncated upload or a header claiming gigabytes is refused with a reason instead of reaching a loader.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from isengard.api.services.loras.formats import LoraFormatError

MAX_HEADER_BYTES = 16 * 1024 * 1024  # thousands of tensors need well under 1 MB of JSON
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
                "F8_E4M3": 1, "F8_E5M2": 1}  # fmt: skip
_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}


def _refuse_pickle(head: bytes) -> None:
    if head.startswith(b"PK\x03\x04"):
        raise LoraFormatError(
            "this is a PyTorch zip/pickle file (.pt/.ckpt/.bin); only .safetensors LoRAs are accepted, "
            "because loading a pickle can run arbitrary code"
        )
    if head[:1] == b"\x80" and head[1:2] in {b"\x02", b"\x03", b"\x04", b"\x05"}:
        raise LoraFormatError(
            "this is a Python pickle file; only .safetensors LoRAs are accepted, because loading a pickle can run "
            "arbitrary code"
        )


def check_safetensors_header(path: Path, max_header_bytes: int = MAX_HEADER_BYTES) -> dict[str, Any]:
    """Validate the file's structure without loading tensors; return the parsed header."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        _refuse_pickle(head)
        if len(head) < 8:
            raise LoraFormatError("the file is too short to be a safetensors file (truncated upload?)")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > max_header_bytes:
            raise LoraFormatError(
                f"the safetensors header claims {header_len} bytes (at most {max_header_bytes} are accepted): "
                "the file is damaged or not a safetensors file"
            )
        if header_len < 2 or 8 + header_len > size:
            raise LoraFormatError("the safetensors header is cut off: the file is truncated or not a safetensors file")
        raw = handle.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LoraFormatError("the safetensors header is not valid JSON: not a safetensors file") from None
    except RecursionError:  # a header nested thousands of levels deep is no tensor index
        raise LoraFormatError("the safetensors header is nested too deeply: not a safetensors file") from None
    if not isinstance(header, dict):
        raise LoraFormatError("the safetensors header is not a JSON object")
    data_size = size - 8 - header_len
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise LoraFormatError("the safetensors metadata must map names to strings")
            continue
        if not isinstance(entry, dict) or entry.get("dtype") not in _DTYPE_BYTES:
            raise LoraFormatError(f"tensor '{name}' has an unknown dtype")
        if entry["dtype"] not in _FLOAT_DTYPES:
            raise LoraFormatError(f"tensor '{name}' is {entry['dtype']}: LoRA weights are floating point")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise LoraFormatError(f"tensor '{name}' has an invalid shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise LoraFormatError(f"tensor '{name}' has invalid data offsets")
        start, end = offsets
        if not 0 <= start <= end <= data_size or end - start != math.prod(shape) * _DTYPE_BYTES[entry["dtype"]]:
            raise LoraFormatError(f"tensor '{name}' points outside the file: the file is truncated or damaged")
    return header


def read_lora_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and header metadata of a checked safetensors file."""
    header = check_safetensors_header(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors' own checks, e.g. overlapping ranges
        raise LoraFormatError(f"the safetensors file could not be read: {exc}") from exc
    metadata = dict(header.get("__metadata__") or {})
    return tensors, metadata
