"""The rehearsal's shared fixtures: one full-size model folder per base for the whole run (header-only weights)."""

from __future__ import annotations

from pathlib import Path

import pytest

from isengard.models.rehearsal_model import BASES, FullSizeBase, write_full_size_folder

# The card the rehearsal pretends to have: large enough that every profile is placed as on a real big card.
GPU_BYTES = 80 * 2**30


@pytest.fixture(scope="session")
def full_size_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[FullSizeBase, Path]]:
    root = tmp_path_factory.mktemp("full-size")
    return {base.name: (base, write_full_size_folder(base, root / base.name)) for base in BASES}
