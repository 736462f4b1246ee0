"""Run every benchmark under bench/ in turn; exit non-zero if any of them broke its bound or did not run through.

.venv/bin/python bench/run_all.py [name ...]           # e.g. `run_all.py queue trainer`
.venv/bin/python bench/run_all.py --smoke [name ...]   # each at a tiny size: does it still run? (bounds not judged)

The smoke run is what the test suite does, so a benchmark that stops working is caught by `make test`; ratios at
those sizes are noise, so there only a crash or a failed request counts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from verdict import BOUND_BROKEN

BENCH_DIR = Path(__file__).resolve().parent

# Arguments that make each benchmark run through in seconds.
SMOKE_ARGS: dict[str, list[str]] = {
    "bench_captioning.py": ["--images", "2", "--batch", "2", "--tokens", "8", "--repeats", "1"],
    "bench_dataset_grid.py": ["--rows", "2000"],
    "bench_evaluation.py": ["--steps", "16", "--sample-every", "8", "--repeats", "1", "--photos", "2"],
    "bench_generation.py": ["--repeats", "2", "--size", "64", "--steps", "2"],
    "bench_load.py": ["--requests", "16", "--concurrency", "4", "--subscribers", "8", "--images", "2000"],
    "bench_queue.py": ["--jobs", "4", "--subscribers", "4", "--events", "4"],
    "bench_trainer.py": ["--steps", "8", "--resolution", "64"],
}


def scripts(names: list[str]) -> list[Path]:
    found = sorted(BENCH_DIR.glob("bench_*.py"))
    if not names:
        return found
    wanted = {f"bench_{name.removeprefix('bench_').removesuffix('.py')}.py" for name in names}
    return [script for script in found if script.name in wanted]


def main(argv: list[str]) -> int:
    smoke = "--smoke" in argv
    chosen = scripts([arg for arg in argv if arg != "--smoke"])
    broken: list[str] = []
    failed: list[str] = []
    for script in chosen:
        print(f"\n=== {script.name}", flush=True)
        started = time.monotonic()
        extra = SMOKE_ARGS[script.name] if smoke else []
        code = subprocess.call([sys.executable, str(script), *extra], cwd=BENCH_DIR.parent)
        print(f"=== {script.name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code == BOUND_BROKEN:
            broken.append(script.name)
        elif code != 0:
            failed.append(script.name)
    if failed:
        print(f"\ndid not run through: {', '.join(failed)}")
    if broken and not smoke:
        print(f"\nbounds broken in: {', '.join(broken)}")
    if failed or (broken and not smoke):
        return 1
    print(f"\nall {len(chosen)} benchmarks {'ran through' if smoke else 'within their bounds'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
