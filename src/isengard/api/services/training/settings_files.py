"""Training settings as files: a run's or a preset's settings exported as YAML and imported back into the form, and
a run exported as an ai-toolkit job file for people who want to go on training there.

The settings file is small and readable on purpose (the plugin and its config, nothing about this installation),
so that it can be kept next to a dataset, shared, and edited by hand. Importing validates it exactly as starting a
run would, and answers with the complete config the form fills in.
"""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import HTTPException
from pydantic import ValidationError
from sqlalchemy.orm import Session

from isengard.api.schemas.training import SettingsFile
from isengard.api.services.jobs.manage import get_job
from isengard.api.services.training.presets import get_preset
from isengard.api.services.training.runs import resolve_config, training_plugin
from isengard.api.state import Services
from isengard.api.support import download_names
from isengard.db.models import Job
from isengard.domain import JobKind
from isengard.plugins.training.ai_toolkit_config import AiToolkitConfig, job_config

FORMAT = "isengard-training-settings/1"
# ai-toolkit's FLUX.1-dev reference: it downloads or finds the model itself.
AI_TOOLKIT_BASE = "black-forest-labs/FLUX.1-dev"


def _document(plugin: str, name: str, config: dict[str, Any]) -> str:
    body = {"format": FORMAT, "plugin": plugin, "name": name, "config": config}
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def _training_run(session: Session, job_id: str) -> Job:
    job = get_job(session, job_id)
    if job.kind != JobKind.TRAINING.value:
        raise HTTPException(status_code=422, detail=f"job {job_id} is a {job.kind} job, not a training run")
    return job


def run_settings(session: Session, job_id: str) -> tuple[str, str]:
    """A run's complete settings as a YAML document, and its file name."""
    job = _training_run(session, job_id)
    name = f"{download_names.run_stem(session, job)}-settings.yaml"
    return _document(job.plugin, job.name, dict(job.config or {})), name


def preset_settings(session: Session, preset_id: str) -> tuple[str, str]:
    """A preset's settings (its changes from the defaults) as a YAML document, and its file name."""
    preset = get_preset(session, preset_id)
    return _document(preset.plugin, preset.name, dict(preset.config or {})), f"{download_names.slug(preset.name)}.yaml"


def _parse(text: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise HTTPException(status_code=422, detail=f"the file is not valid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise HTTPException(status_code=422, detail=f"the file is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise HTTPException(status_code=422, detail="the file holds no settings: expected 'plugin' and 'config' keys")
    return document


def import_settings(services: Services, text: str) -> SettingsFile:
    """A settings file checked as a run would be: a known plugin, and a config its schema accepts."""
    document = _parse(text)
    plugin_name = document.get("plugin", "flux-lora")
    config = document.get("config", {})
    if not isinstance(plugin_name, str) or not plugin_name:
        raise HTTPException(status_code=422, detail="'plugin' must name a training plugin, such as flux-lora")
    if not isinstance(config, dict):
        raise HTTPException(status_code=422, detail="'config' must be a mapping of setting names to values")
    plugin = training_plugin(services, plugin_name)
    resolved = resolve_config(services, plugin, config)
    name = document.get("name")
    return SettingsFile(
        plugin=plugin.name, name=name if isinstance(name, str) else "", config=resolved.model_dump(mode="json")
    )


def _ai_toolkit_config(config: dict[str, Any]) -> tuple[AiToolkitConfig, list[str]]:
    """The run's settings under ai-toolkit's: those with the same name and meaning carried over; any that
    ai-toolkit cannot take (a resolution not a multiple of 64, an optimizer it lacks) left at its default."""
    shared = {key: value for key, value in config.items() if key in AiToolkitConfig.model_fields}
    dropped: list[str] = []
    while True:
        try:
            return AiToolkitConfig.model_validate(shared), dropped
        except ValidationError as exc:
            bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
            if not bad & set(shared):
                raise
            for key in sorted(bad & set(shared)):
                dropped.append(key)
                shared.pop(key)


def ai_toolkit_file(services: Services, session: Session, job_id: str) -> tuple[str, str]:
    """The run as an ai-toolkit job file (the adapter's own mapping), and its file name.

    The dataset is the character's upload folder, which holds each photo beside its caption (.txt) the way
    ai-toolkit reads them; ai-toolkit puts its trigger word in for `[trigger]` itself."""
    job = _training_run(session, job_id)
    config, dropped = _ai_toolkit_config(dict(job.config or {}))
    trigger = str(((job.payload or {}).get("input") or {}).get("trigger_word") or "")
    stem = download_names.run_stem(session, job)
    dataset = services.data.uploads(job.character_id) if job.character_id else services.data.root / "dataset"
    document = job_config(
        config,
        name=stem,
        trigger_word=trigger,
        dataset_dir=dataset.resolve(),
        training_folder=services.data.root.resolve() / "ai-toolkit-output",
        base_model=AI_TOOLKIT_BASE,
    )
    header = f"# ai-toolkit job file for {job.name} (from Isengard): python run.py {stem}.yaml\n"
    if dropped:
        header += f"# left at ai-toolkit's defaults (not accepted there as set in Isengard): {', '.join(dropped)}\n"
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True), f"{stem}-ai-toolkit.yaml"
