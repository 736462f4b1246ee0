"""The base-model registry: every base people can train a LoRA on, one module per architecture family.

Everything that differs between bases lives in the family modules (flux1.py, flux2_klein.py): the trainer, the
generator, the planner, the LoRA checks, capabilities and the web form read it from here. Adding a base is one
`BaseSpec` in its family's module; adding a family is one module (a `BaseFamily` subclass, its tiny config) listed
in `FAMILIES` below.
"""

from __future__ import annotations

import json
from pathlib import Path

from isengard.models.bases import flux1, flux2_klein
from isengard.models.bases.spec import (
    BaseDefaults,
    BaseFamily,
    BaseSpec,
    FlowSettings,
    TextEmbedding,
    TextEncoderSpec,
)

__all__ = [
    "BASES",
    "DEFAULT_BASE",
    "FAMILIES",
    "BaseDefaults",
    "BaseFamily",
    "BaseSpec",
    "FlowSettings",
    "TextEmbedding",
    "TextEncoderSpec",
    "UnknownBase",
    "base_names",
    "base_of_folder",
    "family_of_folder",
    "get_base",
    "resolve_base_name",
]

FAMILIES: tuple[BaseFamily, ...] = (flux1.FAMILY, flux2_klein.FAMILY)
BASES: dict[str, BaseSpec] = {spec.name: spec for family in FAMILIES for spec in family.bases}
DEFAULT_BASE = flux1.FLUX1_DEV.name


class UnknownBase(ValueError):
    """A base name that is not in the registry."""


def base_names() -> list[str]:
    return list(BASES)


def get_base(name: str | None) -> BaseSpec:
    """The base of that name (the default for None or an empty name)."""
    spec = BASES.get(name or DEFAULT_BASE)
    if spec is None:
        raise UnknownBase(f"unknown base '{name}': known bases are {', '.join(BASES)}")
    return spec


def resolve_base_name(text: str | None) -> str | None:
    """A registry name for what a file or an old record calls its base (an id, a repo id, an alias); None when the
    text names no known base."""
    if not text:
        return None
    lowered = text.strip().lower()
    for spec in BASES.values():
        if lowered == spec.name or lowered in (alias.lower() for alias in spec.aliases):
            return spec.name
    return None


def family_of_folder(folder: Path) -> BaseFamily:
    """The family a diffusers folder belongs to, from its model_index.json's pipeline class (FLUX.1 when unsaid)."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        return flux1.FAMILY
    name = index.get("_class_name") if isinstance(index, dict) else None
    return next((family for family in FAMILIES if family.pipeline_class == name), flux1.FAMILY)


def base_of_folder(folder: Path) -> BaseSpec:
    """The base a diffusers folder holds: the base of its family whose published transformer config the folder's
    matches (bases of one family differ in width and depth, and so in what they need); the family's first otherwise
    (a tiny fast-test model, or bases of the same architecture such as FLUX.1 dev and Krea)."""
    family = family_of_folder(folder)
    try:
        config = json.loads((folder / "transformer" / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    for spec in family.bases:
        published = {key: value for key, value in spec.transformer_config.items() if not key.startswith("_")}
        if isinstance(config, dict) and all(config.get(key) == value for key, value in published.items()):
            return spec
    return family.bases[0]
