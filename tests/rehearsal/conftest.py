"""The rehearsal's shared fixtures: one full-size model folder per base for the whole run (header-only weights)."""

from __future__ import annotations

from pathlib import Path

import pytest

from isengard.models.bases import BASES, BaseSpec
from isengard.models.rehearsal_model import write_full_size_folder

# The card the rehearsal pretends to have: large enough that every profile is placed as on a real big card.
GPU_BYTES = 80 * 2**30


@pytest.fixture(scope="session")
def full_size_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[BaseSpec, Path]]:
    root = tmp_path_factory.mktemp("full-size")
    return {name: (spec, write_full_size_folder(spec, root / name)) for name, spec in BASES.items()}
