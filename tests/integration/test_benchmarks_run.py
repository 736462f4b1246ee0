"""Every benchmark under bench/ still runs through, at a tiny size (`run_all.py --smoke`'s arguments).

Their ratios are judged by `make bench` at full size; here only a crash, a failed request or a missing smoke entry
fails, so a change that breaks a benchmark (a renamed route, a refused Host header) is caught by `make test`.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


def run_all() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # run_all imports its neighbour verdict.py, as it does when run as a script
    try:
        spec = importlib.util.spec_from_file_location("bench_run_all", BENCH / "run_all.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


RUN_ALL = run_all()


def test_every_benchmark_has_smoke_arguments() -> None:
    assert set(RUN_ALL.SMOKE_ARGS) == {path.name for path in BENCH.glob("bench_*.py")}


@pytest.mark.parametrize("script", sorted(RUN_ALL.SMOKE_ARGS))
def test_the_benchmark_runs_through(script: str) -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH / script), *RUN_ALL.SMOKE_ARGS[script]],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert run.returncode in (0, RUN_ALL.BOUND_BROKEN), (
        f"exit {run.returncode}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    )
