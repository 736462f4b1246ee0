"""Where the base model lives: the tiny model under the data dir in fast-test mode, FLUX.1-dev in production.

Production never downloads: it uses `ISENGARD_BASE_MODEL_PATH`, else a snapshot already in the Hugging Face cache.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from isengard.config import Mode, Settings

TINY_MODEL_DIRNAME = "tiny-flux"


class ModelStatus(BaseModel):
    name: str
    path: str | None
    present: bool
    reason: str | None = None


def tiny_model_dir(settings: Settings) -> Path:
    return settings.data_path / "models" / TINY_MODEL_DIRNAME


def _hf_cache_snapshot(repo_id: str) -> Path | None:
    hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", "~/.cache/huggingface")) / "hub")
    snapshots = hub.expanduser() / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    candidates = sorted((p for p in snapshots.iterdir() if (p / "model_index.json").exists()), key=os.path.getmtime)
    return candidates[-1] if candidates else None


def base_model_dir(settings: Settings) -> Path | None:
    """The folder `FluxPipeline.from_pretrained` should load, or None when it is not on this machine."""
    if settings.resolved_mode == Mode.FAST_TEST:
        folder = tiny_model_dir(settings)
        return folder if (folder / "model_index.json").exists() else None
    if settings.base_model_path is not None:
        folder = settings.base_model_path.expanduser()
        return folder if (folder / "model_index.json").exists() else None
    return _hf_cache_snapshot(settings.base_model)


def model_status(settings: Settings) -> ModelStatus:
    folder = base_model_dir(settings)
    if settings.resolved_mode == Mode.FAST_TEST:
        name = "tiny FLUX-architecture model (fast-test)"
        missing = "not built yet: `isengard up` or `isengard migrate` builds it under the data dir"
    else:
        name = settings.base_model
        where = settings.base_model_path or "the Hugging Face cache"
        missing = (
            f"no model_index.json for {settings.base_model} in {where}; download it once "
            "(huggingface-cli download) or set ISENGARD_BASE_MODEL_PATH"
        )
    return ModelStatus(
        name=name,
        path=str(folder) if folder else None,
        present=folder is not None,
        reason=None if folder else missing,
    )
