"""Where a plugin's transformers model is, how it keeps it loaded, and the tiny stand-ins fast-test builds for it.

Production weights come from a folder a setting names or from the Hugging Face cache, never from a download at run
time; `weights_folder` finds them and `weights_capability` says what to download when they are not there. In
fast-test mode a plugin builds a tiny random model from a config instead and keeps it as a whole folder under a
version marker (`tiny_folder_is_current`, `save_tiny_folder`), so the real loading code runs in every test.
`ModelSlot` holds the loaded model between the plugin's jobs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from isengard.plugins.api import Capability, free_device_memory

T = TypeVar("T")


class Savable(Protocol):
    """A transformers model, tokenizer or processor."""

    def save_pretrained(self, save_directory: Any) -> Any: ...


def hf_cache_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of `repo_id` that holds its config.json, or None (nothing is downloaded)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "config.json")
    return Path(found).parent if isinstance(found, str) else None


def weights_folder(model: str, model_path: Path | None) -> Path | None:
    """`model_path` when set (and it holds a config.json), otherwise `model`'s snapshot in the Hugging Face cache."""
    if model_path is not None:
        folder = model_path.expanduser()
        return folder if (folder / "config.json").is_file() else None
    return hf_cache_snapshot(model)


def weights_capability(model: str, model_path: Path | None, *, path_variable: str, tiny: str | None) -> Capability:
    """Whether the weights are there: `tiny` names the fast-test stand-in when that is what runs. Cheap on purpose
    (asked on every capabilities request): it must not import torch."""
    if importlib.util.find_spec("transformers") is None:
        return Capability(available=False, reason="the transformers package is not installed")
    if tiny is not None:
        return Capability(available=True, details={"model": tiny})
    folder = weights_folder(model, model_path)
    if folder is None:
        where = model_path or "the Hugging Face cache"
        return Capability(
            available=False,
            reason=f"no weights for {model} in {where}: download them once "
            f"(hf download {model}) or set {path_variable}",
        )
    return Capability(available=True, details={"model": model, "path": str(folder)})


def tiny_folder_is_current(folder: Path, marker: str, version: int) -> bool:
    try:
        return bool(json.loads((folder / marker).read_text()).get("version") == version)
    except (OSError, ValueError):
        return False


def save_tiny_folder(folder: Path, parts: Sequence[Savable], *, marker: str, version: int, seed: int) -> Path:
    """Save `parts` (model, tokenizer, processor) to `folder` with the marker last, replacing what was there."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        for part in parts:
            part.save_pretrained(staging)
        (staging / marker).write_text(json.dumps({"version": version, "seed": seed}))
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)  # whole folders only: a reader never sees half a model
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not tiny_folder_is_current(folder, marker, version):  # another process built it at the same moment
            raise
    return folder


class ModelSlot(Generic[T]):
    """The one model a plugin keeps loaded between its own jobs (loading is most of a small job's time), keyed by
    what it was loaded from; the worker empties it before another plugin's job needs the memory. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: Hashable = None
        self._value: T | None = None

    @property
    def value(self) -> T | None:
        return self._value

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The model loaded for `key`, loading it (and dropping one loaded for another key first) when needed."""
        with self._lock:
            if self._value is not None and self._key == key:
                return self._value
            self._value = None
            self._value, self._key = load(), key
            return self._value

    def release(self) -> bool:
        """Let the model go and free the device's memory; False when nothing was loaded."""
        with self._lock:
            if self._value is None:
                return False
            self._value = None
        free_device_memory()
        return True
