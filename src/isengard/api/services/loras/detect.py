"""Which base an imported LoRA file was made for: from its keys and shapes, checked against every registered base.

Each family's transformer has its own module names and widths (FLUX.1's `ff.net.0.proj` at 3072, klein 4B's
`ff.linear_in` at 3072, klein 9B's at 4096), so the shapes a file's LoRA matrices have tell its family. Bases of one
family share their shapes (FLUX.1 [dev] and Krea): the file's header decides between them when it names one, else
the person importing it is asked (`BaseChoiceNeeded`, answered with the base they pick). A file whose shapes fit no
base is kept as an "unknown base" LoRA, which generation refuses with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from isengard.api.services.bases import UNKNOWN_BASE
from isengard.api.services.loras.formats import ConvertedLora, LoraFormatError, convert_to_diffusers
from isengard.config import Mode, Settings
from isengard.models.bases import BASES, FAMILIES, BaseFamily, resolve_base_name
from isengard.models.flux_layout import linear_shapes
from isengard.models.locate import base_model_dir

# Header keys other tools write the base into (Isengard, kohya's sd-scripts, ai-toolkit, diffusers' trainers).
BASE_HEADER_KEYS = ("base", "base_model", "ss_base_model_version", "modelspec.architecture", "base_model_name")


@dataclass
class Detected:
    """What a file's keys, shapes and header say: the bases it may be for (one when it can tell, several when bases
    of one family share its shapes and its header names none, none when it fits no base), and the converted file."""

    candidates: tuple[str, ...]
    converted: ConvertedLora
    warnings: list[str] = field(default_factory=list)


class BaseChoiceNeeded(ValueError):
    """The file fits several bases and does not say which: the person importing it must choose one of them."""

    def __init__(self, message: str, candidates: tuple[str, ...]) -> None:
        super().__init__(message)
        self.candidates = candidates


class BaseChoiceRefused(ValueError):
    """The base asked for is not one the file can be for."""


def chosen_base(detected: Detected, requested: str | None) -> str:
    """The base the LoRA is recorded with: the one the file tells, else the one asked for among those it fits;
    UNKNOWN_BASE for a file that fits none (when none was asked for)."""
    candidates = detected.candidates
    if requested is not None:
        if requested in candidates:
            return requested
        if not candidates:
            raise BaseChoiceRefused(f"the file fits no known base, so it cannot be imported as {requested}")
        raise BaseChoiceRefused(f"the file is a LoRA for {' or '.join(candidates)}, not for {requested}")
    if len(candidates) > 1:
        names = ", ".join(candidates)
        raise BaseChoiceNeeded(
            f"the file fits {names} (same architecture) and does not say which it was trained on: choose its base "
            f"(one of {names}) and import it again",
            candidates,
        )
    return candidates[0] if candidates else UNKNOWN_BASE


def _family_config(settings: Settings, family: BaseFamily) -> dict[str, object]:
    """The transformer config to check a file against: the local (or fast-test tiny) model's, else the published
    one of the family's first base."""
    first = family.bases[0]
    folder: Path | None = base_model_dir(settings, first.name)
    if folder is None and settings.resolved_mode == Mode.FAST_TEST:
        from isengard.models.tiny import ensure_tiny_model

        folder = ensure_tiny_model(settings, first.name)
    path = folder / "transformer" / "config.json" if folder else None
    if path is not None and path.is_file():
        loaded: dict[str, object] = json.loads(path.read_text())
        return loaded
    return dict(first.transformer_config)


def _named_base(header: dict[str, str], family: BaseFamily) -> str | None:
    for key in BASE_HEADER_KEYS:
        value = header.get(key)
        if value is None or value.strip().lower() in family.family_names:
            continue  # "flux.1" says FLUX.1, not whether dev or Krea
        name = resolve_base_name(value)
        if name is not None and BASES[name].family is family:
            return name
    return None


def detect_base(settings: Settings, tensors: dict[str, torch.Tensor], header: dict[str, str]) -> Detected:
    """The bases the file may be for and the file in Isengard's layout; LoraFormatError when its keys are not a
    LoRA."""
    reasons = []
    for family in FAMILIES:
        shapes = linear_shapes(family.layout(_family_config(settings, family)))
        try:
            converted = convert_to_diffusers(tensors, shapes)
        except LoraFormatError as exc:
            reasons.append(f"{family.name}: {exc}")
            continue
        named = _named_base(header, family)
        return Detected((named,) if named else tuple(spec.name for spec in family.bases), converted)
    converted = convert_to_diffusers(tensors, None)  # a readable LoRA after all: the layout error is raised here
    why = "; ".join(reasons)
    return Detected((), converted, [f"its shapes fit no known base ({why})"])
