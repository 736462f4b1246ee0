"""Submitting training jobs: the config checked against the plugin, the dataset checked and snapshotted.

A job carries a snapshot of the dataset (image paths and captions as they are at submission), so editing captions
while a run is queued or running never changes what that run trains on.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from isengard.api.schemas.training import TrainingCreate, TrainingEstimate, TrainingPluginOut
from isengard.api.services.bases import ensure_base_installed
from isengard.api.services.dataset.characters import referenced_character
from isengard.api.services.dataset.images import dataset_query
from isengard.api.services.jobs.availability import ensure_runnable, listed_plugins, plugin_of_kind
from isengard.api.services.jobs.manage import submit_job
from isengard.api.services.training.base_defaults import base_run_defaults
from isengard.api.services.training.memory import MemoryFit, ensure_memory_fits
from isengard.api.services.training.presets import get_preset
from isengard.api.state import Services
from isengard.api.support.validation_errors import readable_errors
from isengard.config import Mode
from isengard.dataset.image_files import original_relative
from isengard.db.models import Job
from isengard.domain import DatasetItem, JobKind, PluginKind, TrainingInput
from isengard.jobs.speeds import measured_speed
from isengard.jobs.states import Submission
from isengard.plugins.api import PluginError
from isengard.plugins.training.interface import RECOMMENDED_RANGE, TrainingJob, TrainingPlugin

log = logging.getLogger(__name__)

MIN_IMAGES = {Mode.FAST_TEST: 1, Mode.PRODUCTION: 5}


def default_config(plugin: TrainingPlugin) -> dict[str, Any]:
    defaults = getattr(plugin, "default_config", None)
    if callable(defaults):
        return dict(defaults())
    return plugin.config_model().model_dump()


def bases_defaults(services: Services, defaults: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per base, the values of an engine's fields (its `defaults`) that a run on that base starts from; none for an
    engine without a base field."""
    if "base" not in defaults:
        return {}
    return base_run_defaults(defaults, fast_test=services.settings.resolved_mode == Mode.FAST_TEST)


FALLBACK_RESOLUTION = 1024


def default_resolution(services: Services) -> int:
    """The resolution a dataset's photo sizes are judged against when no run is chosen yet: the smallest of the
    default trainer's default resolutions (the rule the training form applies to the settings it shows)."""
    plugin_name = TrainingCreate.model_fields["plugin"].default
    try:
        defaults = default_config(training_plugin(services, plugin_name))
    except HTTPException:  # the default trainer is not installed here
        return FALLBACK_RESOLUTION
    listed = defaults.get("resolutions") or [defaults.get("resolution")]
    sizes = [int(size) for size in listed if isinstance(size, int)]
    return min(sizes) if sizes else FALLBACK_RESOLUTION


def list_training_plugins(services: Services) -> list[TrainingPluginOut]:
    plugins = []
    for listed in listed_plugins(services, PluginKind.TRAINING, TrainingPlugin):
        schema: dict[str, Any] = {}
        defaults: dict[str, Any] = {}
        if listed.cls is not None:  # the defaults may need an instance (a plugin's own default_config)
            plugin = training_plugin(services, listed.name)
            schema = plugin.config_model.model_json_schema()
            defaults = default_config(plugin)
        plugins.append(
            TrainingPluginOut(
                **listed.described(), config_schema=schema, defaults=defaults,
                base_defaults=bases_defaults(services, defaults),
            )
        )  # fmt: skip
    return plugins


def training_plugin(services: Services, name: str) -> TrainingPlugin:
    return plugin_of_kind(services, PluginKind.TRAINING, name, TrainingPlugin)


def resolve_config(
    services: Services, plugin: TrainingPlugin, config: dict[str, Any], *, base: dict[str, Any] | None = None
) -> BaseModel:
    """Defaults, then the run's base's recommended settings, then a preset's values, then the request's: validated,
    or a 422 that names each bad field."""
    defaults = default_config(plugin)
    base_name = config.get("base") or (base or {}).get("base") or defaults.get("base")
    on_base = bases_defaults(services, defaults).get(str(base_name), {})
    merged = {**defaults, **on_base, **(base or {}), **config}
    try:
        return plugin.validate_config(merged)
    except ValidationError as exc:
        raise HTTPException(status_code=422, detail=readable_errors(exc, prefix="config")) from None
    except PluginError as exc:
        raise HTTPException(status_code=422, detail=f"config: {exc}") from None


def snapshot_dataset(services: Services, db: Session, character_id: str, config: BaseModel) -> TrainingInput:
    character = referenced_character(db, character_id)
    images = db.scalars(dataset_query(character_id)).all()
    minimum = MIN_IMAGES[services.settings.resolved_mode]
    if len(images) < minimum:
        raise HTTPException(
            status_code=422,
            detail=f"'{character.name}' has {len(images)} image(s); training needs at least {minimum} "
            f"({RECOMMENDED_RANGE} varied photos work best)",
        )
    if not getattr(config, "allow_empty_captions", False):
        uncaptioned = [image for image in images if not image.caption.strip()]
        if uncaptioned:
            first = uncaptioned[0].original_name or uncaptioned[0].filename
            raise HTTPException(
                status_code=422,
                detail=f"{len(uncaptioned)} of {len(images)} images have no caption (first: {first}); caption "
                "them, or set allow_empty_captions to train on the trigger word alone",
            )
    return TrainingInput(
        character_id=character.id,
        character_name=character.name,
        trigger_word=character.trigger_word,
        dataset=[
            DatasetItem(
                image_path=original_relative(image),
                caption=image.caption,
                width=image.width,
                height=image.height,
            )
            for image in images
        ],
    )


def _prepare(
    services: Services, db: Session, body: TrainingCreate
) -> tuple[TrainingPlugin, BaseModel, TrainingInput, MemoryFit | None]:
    plugin = training_plugin(services, body.plugin)
    base = None
    what = "this run"
    if body.preset_id is not None:
        preset = get_preset(db, body.preset_id)
        if preset.plugin != body.plugin:
            raise HTTPException(
                status_code=422, detail=f"preset '{preset.name}' is for plugin '{preset.plugin}', not '{body.plugin}'"
            )
        base = preset.config
        what = f"preset '{preset.name}'"
    config = resolve_config(services, plugin, body.config, base=base)
    # The base first: its missing weights are what a person must fix, whatever else the machine lacks.
    base_name = getattr(config, "base", None)
    if isinstance(base_name, str):
        ensure_base_installed(services.settings, base_name, what=what)
    ensure_runnable(services, PluginKind.TRAINING, body.plugin)
    dataset = snapshot_dataset(services, db, body.character_id, config)
    fit = ensure_memory_fits(services, body.plugin, config.model_dump(mode="json"))
    return plugin, config, dataset, fit


def next_run_number(db: Session, character_id: str) -> int:
    highest = db.scalar(
        select(func.max(Job.run_number)).where(Job.kind == JobKind.TRAINING.value, Job.character_id == character_id)
    )
    return (highest or 0) + 1


def default_run_name(character_name: str, run_number: int, config: dict[str, Any]) -> str:
    """`Ada Lovelace run 3 (1500 steps, rank 16)`: distinct per run, plain characters only, easy to type."""
    settings = [
        f"{config['steps']} steps" if "steps" in config else "",
        f"rank {config['rank']}" if "rank" in config else "",
    ]
    detail = ", ".join(part for part in settings if part)
    return f"{character_name} run {run_number}" + (f" ({detail})" if detail else "")


def submit_training(services: Services, db: Session, body: TrainingCreate) -> Job:
    plugin, config, dataset, _fit = _prepare(services, db, body)
    config_dict = config.model_dump(mode="json")
    payload = TrainingJob(plugin=plugin.name, config=config_dict, input=dataset).model_dump(mode="json")
    run_number = next_run_number(db, dataset.character_id)
    name = body.name.strip() or default_run_name(dataset.character_name, run_number, config_dict)
    submission = Submission(
        JobKind.TRAINING, plugin.name, payload, config_dict, name,
        character_id=dataset.character_id, run_number=run_number, base=config_dict.get("base"),
    )  # fmt: skip
    job = submit_job(services, db, submission)
    log.info("training submitted", extra={"job_id": job.id, "images": len(dataset.dataset), "plugin": plugin.name})
    return job


def estimate_training(services: Services, db: Session, body: TrainingCreate) -> TrainingEstimate:
    """The plugin's own estimate, at the speed its recent runs measured (its stated default before any run)."""
    plugin, config, dataset, fit = _prepare(services, db, body)
    measured = measured_speed(db, plugin.name, plugin.speed_resolution(config))
    estimate = plugin.estimate(config, dataset, measured)
    return TrainingEstimate(
        plugin=plugin.name,
        config=config.model_dump(mode="json"),
        images=len(dataset.dataset),
        **estimate.model_dump(),
        memory_summary=fit.summary if fit else None,
        memory_plan=fit.plan if fit else None,
    )
