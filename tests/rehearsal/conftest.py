"""The rehearsal's shared fixtures: full-size model folders (header-only weights) and the rehearsal of every base,
run once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from isengard.models.bases import BASES, DEFAULT_BASE, BaseSpec
from isengard.models.profiles import PROFILE_NAMES
from isengard.models.rehearsal import RehearsalResult, rehearse_bases
from isengard.models.rehearsal_model import write_full_size_folder

# The card the rehearsal pretends to have: large enough that every profile is placed as on a real big card.
GPU_BYTES = 80 * 2**30


@pytest.fixture(scope="session")
def default_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[BaseSpec, Path]:
    """FLUX.1 [dev]'s full-size folder, for the planted-mistake tests."""
    spec = BASES[DEFAULT_BASE]
    return spec, write_full_size_folder(spec, tmp_path_factory.mktemp("full-size") / spec.name)


@pytest.fixture(scope="session")
def rehearsals(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], list[RehearsalResult]]:
    """Every base's training and generation under every profile, one process per core."""
    return rehearse_bases(
        tmp_path_factory.mktemp("rehearsal"), list(BASES), list(PROFILE_NAMES), gpu_bytes=GPU_BYTES,
        workers=os.cpu_count() or 1,
    )  # fmt: skip
