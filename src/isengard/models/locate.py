"""Where each base model lives: its tiny model under the data dir in fast-test mode; in production a local folder
(`data/models/<base>`, or `ISENGARD_BASE_MODEL_PATH` for the configured base) or a snapshot already in the Hugging
Face cache. Production never downloads. A folder counts only when every component its family needs is there.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

from isengard.config import Mode, Settings
from isengard.models.bases import DEFAULT_BASE, BaseSpec, get_base, resolve_base_name

# Folder of each family's tiny model under data/models (FLUX.1's keeps its first name).
TINY_DIRNAMES = {"flux1": "tiny-flux", "flux2-klein": "tiny-flux2-klein"}
TINY_MODEL_DIRNAME = TINY_DIRNAMES["flux1"]
WEIGHT_PATTERNS = ("*.safetensors", "*.bin")


class ModelStatus(BaseModel):
    name: str
    path: str | None
    present: bool
    reason: str | None = None
    base: str = DEFAULT_BASE
    missing: list[str] = Field(default_factory=list)  # component folders absent or without weights
    download: str | None = None  # the command that puts the weights in place


DISTILLED_SUFFIX = "-distilled"


def tiny_model_dir(settings: Settings, base: str = DEFAULT_BASE, *, distilled: bool = False) -> Path:
    family = get_base(base).family.name
    name = TINY_DIRNAMES.get(family, f"tiny-{family}")
    return settings.data_path / "models" / (name + DISTILLED_SUFFIX if distilled else name)


def local_model_dir(settings: Settings, base: str, *, distilled: bool = False) -> Path:
    """Where `isengard` looks first for a base's weights in production (and where the README says to put them);
    a distilled sibling beside it, `<base>-distilled`."""
    return settings.data_path / "models" / (base + DISTILLED_SUFFIX if distilled else base)


def distilled_model_dir(settings: Settings, base: str) -> Path | None:
    """The complete folder of `base`'s distilled checkpoint (same family, so the same components), or None."""
    spec = get_base(base)
    if spec.distilled_repo_id is None:
        return None
    if settings.resolved_mode == Mode.FAST_TEST:
        candidates = [tiny_model_dir(settings, spec.name, distilled=True)]
    else:
        candidates = [local_model_dir(settings, spec.name, distilled=True)]
        snapshot = _hf_cache_snapshot(spec.distilled_repo_id)
        if snapshot is not None:
            candidates.append(snapshot)
    for folder in candidates:
        if (folder / "model_index.json").exists() and not missing_components(folder, spec):
            return folder
    return None


def distilled_missing_reason(settings: Settings, base: str) -> str:
    spec = get_base(base)
    if spec.distilled_repo_id is None:
        return f"{spec.label} has no distilled checkpoint"
    if settings.resolved_mode == Mode.FAST_TEST:
        return "not built yet: the worker builds the tiny distilled model on first use"
    target = local_model_dir(settings, spec.name, distilled=True)
    download = f"hf download {spec.distilled_repo_id} --local-dir {target}"
    if (target / "model_index.json").exists():
        missing = ", ".join(missing_components(target, spec))
        return f"{spec.label}'s distilled checkpoint at {target} is incomplete: missing {missing}; `{download}`"
    return f"{spec.label}'s distilled checkpoint is not on this machine: put it in {target} with `{download}`"


def configured_base(settings: Settings) -> str:
    """The base `ISENGARD_BASE_MODEL` (and `ISENGARD_BASE_MODEL_PATH`) speak of: the default when it names none."""
    return resolve_base_name(settings.base_model) or DEFAULT_BASE


def _hf_cache_snapshot(repo_id: str) -> Path | None:
    hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", "~/.cache/huggingface")) / "hub")
    snapshots = hub.expanduser() / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    candidates = sorted((p for p in snapshots.iterdir() if (p / "model_index.json").exists()), key=os.path.getmtime)
    return candidates[-1] if candidates else None


def _candidates(settings: Settings, spec: BaseSpec) -> list[Path]:
    if settings.resolved_mode == Mode.FAST_TEST:
        return [tiny_model_dir(settings, spec.name)]
    found = []
    if settings.base_model_path is not None and configured_base(settings) == spec.name:
        found.append(settings.base_model_path.expanduser())
    found.append(local_model_dir(settings, spec.name))
    snapshot = _hf_cache_snapshot(spec.repo_id)
    if snapshot is not None:
        found.append(snapshot)
    return found


def missing_components(folder: Path, spec: BaseSpec) -> list[str]:
    """Component folders of `spec`'s family that are absent or hold no weights (tokenizer and scheduler: no file)."""
    family = spec.family
    weighted = {"transformer", "vae", *family.text_encoder_folders}
    missing = []
    for name in family.components:
        part = folder / name
        if name in weighted:
            ok = part.is_dir() and any(next(part.glob(pattern), None) for pattern in WEIGHT_PATTERNS)
        else:
            ok = part.is_dir() and any(part.iterdir())
        if not ok:
            missing.append(name)
    return missing


def base_model_dir(settings: Settings, base: str | None = None) -> Path | None:
    """The complete folder of `base` (the configured base when None) that `from_pretrained` should load, or None."""
    spec = get_base(base or configured_base(settings))
    for folder in _candidates(settings, spec):
        if (folder / "model_index.json").exists() and not missing_components(folder, spec):
            return folder
    return None


def model_status(settings: Settings, base: str | None = None) -> ModelStatus:
    """Whether `base` (the configured one when None) is installed, and if not exactly what is missing."""
    spec = get_base(base or configured_base(settings))
    folder = base_model_dir(settings, spec.name)
    if folder is not None:
        return ModelStatus(name=_display_name(settings, spec), path=str(folder), present=True, base=spec.name)
    if settings.resolved_mode == Mode.FAST_TEST:
        return ModelStatus(
            name=_display_name(settings, spec), path=None, present=False, base=spec.name,
            reason="not built yet: `isengard up` or `isengard migrate` builds it under the data dir",
        )  # fmt: skip
    target = local_model_dir(settings, spec.name)
    download = spec.download_command(str(target))
    partial = next((f for f in _candidates(settings, spec) if (f / "model_index.json").exists()), None)
    if partial is not None:
        missing = missing_components(partial, spec)
        reason = f"{spec.label} at {partial} is incomplete: missing {', '.join(missing)}; complete it with `{download}`"
    else:
        missing = list(spec.family.components)
        reason = f"{spec.label} is not on this machine: put it in {target} with `{download}`"
        if spec.gated:
            reason += f" (gated: accept its licence on huggingface.co/{spec.repo_id} and `hf auth login` first)"
    return ModelStatus(
        name=_display_name(settings, spec), path=None, present=False, reason=reason, base=spec.name, missing=missing,
        download=download,
    )  # fmt: skip


def _display_name(settings: Settings, spec: BaseSpec) -> str:
    if settings.resolved_mode == Mode.FAST_TEST:
        return f"tiny {spec.family.name} model for {spec.name} (fast-test)"
    return spec.repo_id
