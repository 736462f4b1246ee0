"""The GPU check's dry run: the one command a lent GPU runs goes through every step but the CUDA calls."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from isengard.models.bases import BASES
from isengard.models.profiles import PROFILE_NAMES

ROOT = Path(__file__).resolve().parents[2]


def test_the_dry_run_covers_every_base_and_profile() -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    run = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry-run"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert any(line.startswith("would install:") and "--no-index" in line for line in lines)
    for base in BASES.values():
        for name in PROFILE_NAMES:
            assert any(line.split()[:2] == [base.name, name] for line in lines), (base.name, name)
        # The measured columns' code ran for every base with its own family's inputs (klein's included).
        code_path = [line for line in lines if line.startswith(f"{base.name} ") and "tiny model on the CPU" in line]
        assert len(code_path) == 1 and "generation" in code_path[0], (base.name, lines)
    # The evaluator row is measured here (dlib and its weights are project dependencies).
    evaluation = [line for line in lines if line.startswith("evaluation (face, 512 px):")]
    assert len(evaluation) == 1 and evaluation[0].endswith("s/image"), lines


def test_the_wheel_list_is_pinned_and_fetch_refuses_an_unpinned_line(tmp_path: Path) -> None:
    listed = (ROOT / "bench" / "gpu" / "wheels.txt").read_text().splitlines()
    pinned = [line for line in listed if line and line[0] != "#"]
    assert pinned and all("==" in line for line in pinned)
    # The script reads its list from the repository: a copy of it with one unpinned line must be refused.
    copy = tmp_path / "repo"
    (copy / "bench" / "gpu").mkdir(parents=True)
    (copy / "bench" / "gpu_check.sh").write_text((ROOT / "bench" / "gpu_check.sh").read_text())
    (copy / "bench" / "gpu" / "wheels.txt").write_text("\n".join([*pinned, "diffusers"]) + "\n")
    run = subprocess.run(["bash", str(copy / "bench" / "gpu_check.sh"), "--dry-run"], capture_output=True, text=True)
    assert run.returncode == 2 and "unpinned line" in run.stderr
