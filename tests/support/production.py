"""Production-mode settings on this CPU-only machine, for tests of what the API decides before any worker runs."""

from __future__ import annotations

import json

from isengard.config import Mode, Settings
from isengard.models.bases import DEFAULT_BASE, get_base
from isengard.models.tiny import save_tiny_model


def production_settings(settings: Settings) -> Settings:
    """`settings` in production mode with the default base's weights in place. Submitting needs a complete diffusers
    folder of the base on this machine, and plans read its transformer config: the tiny model's folder stands in,
    carrying FLUX.1-dev's published transformer config, since the API reads only the layout and that config."""
    weights = save_tiny_model(settings.data_path / "FLUX.1-dev")
    (weights / "transformer" / "config.json").write_text(json.dumps(dict(get_base(DEFAULT_BASE).transformer_config)))
    return settings.model_copy(update={"mode": Mode.PRODUCTION, "base_model_path": weights})
