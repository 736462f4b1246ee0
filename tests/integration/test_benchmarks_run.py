"""Every benchmark under bench/ still runs through, at a tiny size (`run_all.py --smoke`'s arguments).

Their ratios are judged by `make bench` at full size; here only a crash, a failed request or a missing smoke entry
fails, so a change that breaks a benchmark (a renamed route, a refused Host header) is caught by `make test`.
The benchmarks are separate processes that spend much of their time starting up and waiting on servers: they are
started all at once and each test waits for its own, which takes the time of the slowest instead of the sum.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def started_benchmarks() -> Iterator[dict[str, tuple[subprocess.Popen[bytes], Path]]]:
    """Every smoke run started at once; its output goes to a file (a pipe nobody reads would fill and block it)."""
    with tempfile.TemporaryDirectory(prefix="isengard-bench-") as folder:
        runs = {}
        for script, args in sorted(RUN_ALL.SMOKE_ARGS.items()):
            output = Path(folder) / f"{script}.log"
            with output.open("wb") as handle:
                process = subprocess.Popen(
                    [sys.executable, str(BENCH / script), *args], stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT
                )
            runs[script] = (process, output)
        yield runs
        for process, _ in runs.values():
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.parametrize("script", sorted(RUN_ALL.SMOKE_ARGS))
def test_the_benchmark_runs_through(
    script: str, started_benchmarks: dict[str, tuple[subprocess.Popen[bytes], Path]]
) -> None:
    process, output = started_benchmarks[script]
    code = process.wait(timeout=600)
    assert code in (0, RUN_ALL.BOUND_BROKEN), f"exit {code}\n{output.read_text(errors='replace')[-6000:]}"
