"""Routes for training: the plugins and their config forms, submitting a run, estimates, and presets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from isengard.api.deps import DbSession, ServicesDep
from isengard.api.middleware import ErrorMessage
from isengard.api.ratelimit import rate_limited
from isengard.api.schemas.jobs import JobOut
from isengard.api.schemas.training import (
    PresetCreate,
    PresetOut,
    SettingsFile,
    SettingsImport,
    TrainingCreate,
    TrainingEstimate,
    TrainingPluginOut,
)
from isengard.api.services.training import presets, settings_files
from isengard.api.services.training import runs as service
from isengard.api.support.params import path_id

router = APIRouter(tags=["training"])

PresetId = Annotated[str, path_id("preset")]
JobId = Annotated[str, path_id("job")]
YAML_FILE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/yaml": {"schema": {"type": "string"}}}, "description": "a YAML file"}
}


def yaml_download(text: str, filename: str) -> Response:
    return Response(
        content=text,
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/training/plugins")
def training_plugins(services: ServicesDep) -> list[TrainingPluginOut]:
    """Installed training plugins with their config JSON schema, defaults and whether they can run here."""
    return service.list_training_plugins(services)


@router.post("/training", status_code=202, dependencies=[Depends(rate_limited("training"))])
def start_training(services: ServicesDep, db: DbSession, body: TrainingCreate) -> JobOut:
    """Validate the config and the dataset, snapshot the dataset, and queue the run."""
    return JobOut.from_row(service.submit_training(services, db, body))


@router.post("/training/estimate")
def estimate_training(services: ServicesDep, db: DbSession, body: TrainingCreate) -> TrainingEstimate:
    """The same checks as starting a run, plus the resolved config, epochs and a rough duration; queues nothing."""
    return service.estimate_training(services, db, body)


@router.get("/training/presets")
def list_presets(db: DbSession, plugin: Annotated[str | None, Query(max_length=100)] = None) -> list[PresetOut]:
    return presets.list_presets(db, plugin)


@router.post(
    "/training/presets",
    status_code=201,
    responses={409: {"model": ErrorMessage, "description": "a preset with this name already exists"}},
)
def save_preset(services: ServicesDep, db: DbSession, body: PresetCreate) -> PresetOut:
    """Save a named config; it is checked against the plugin's schema first. Only the given fields are kept,
    so a preset stays a set of changes from the defaults."""
    plugin = service.training_plugin(services, body.plugin)
    service.resolve_config(services, plugin, body.config)
    return presets.create_preset(db, body, body.config)


@router.get("/training/presets/{preset_id}")
def get_preset(db: DbSession, preset_id: PresetId) -> PresetOut:
    return presets.preset_to_out(presets.get_preset(db, preset_id))


@router.delete("/training/presets/{preset_id}", status_code=204)
def delete_preset(db: DbSession, preset_id: PresetId) -> Response:
    presets.delete_preset(db, preset_id)
    return Response(status_code=204)


@router.get("/training/presets/{preset_id}/settings.yaml", response_class=Response, responses=YAML_FILE)
def preset_settings_file(db: DbSession, preset_id: PresetId) -> Response:
    """The preset's settings as a YAML file that imports back into the form."""
    return yaml_download(*settings_files.preset_settings(db, preset_id))


@router.get("/training/runs/{job_id}/settings.yaml", response_class=Response, responses=YAML_FILE)
def run_settings_file(db: DbSession, job_id: JobId) -> Response:
    """The run's complete settings as a YAML file that imports back into the form."""
    return yaml_download(*settings_files.run_settings(db, job_id))


@router.get("/training/runs/{job_id}/ai-toolkit.yaml", response_class=Response, responses=YAML_FILE)
def run_ai_toolkit_file(services: ServicesDep, db: DbSession, job_id: JobId) -> Response:
    """The run as an ai-toolkit job file (its settings under ai-toolkit's names, the character's photos as the
    dataset), to go on training with ai-toolkit."""
    return yaml_download(*settings_files.ai_toolkit_file(services, db, job_id))


@router.post("/training/settings/import")
def import_settings_file(services: ServicesDep, body: SettingsImport) -> SettingsFile:
    """Read a settings file: the plugin and the complete config it gives, validated as a run's would be (a 422
    says what is wrong: not YAML, an unknown plugin, a setting out of range)."""
    return settings_files.import_settings(services, body.text)
