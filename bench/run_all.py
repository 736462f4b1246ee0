"""Run every benchmark under bench/ in turn with its defaults; exit non-zero if any of them broke its bound.

.venv/bin/python bench/run_all.py [name ...]     # e.g. `run_all.py queue trainer`
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    if argv:
        wanted = {f"bench_{name.removeprefix('bench_').removesuffix('.py')}.py" for name in argv}
        scripts = [script for script in scripts if script.name in wanted]
    failed: list[str] = []
    for script in scripts:
        print(f"\n=== {script.name}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(script)], cwd=BENCH_DIR.parent)
        print(f"=== {script.name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(script.name)
    if failed:
        print(f"\nbounds broken in: {', '.join(failed)}")
        return 1
    print(f"\nall {len(scripts)} benchmarks within their bounds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
