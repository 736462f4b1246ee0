#!/usr/bin/env bash
# The full-size benchmarks on a lent GPU, in one command and one table (bench/gpu_check.py says what is measured).
#
#   bench/gpu_check.sh fetch       here, with the package registries: the wheels of bench/gpu/wheels.txt into .whl/
#   bench/gpu_check.sh             on the GPU machine: install .whl/ into /tmp/site, then run every base and profile
#   bench/gpu_check.sh --dry-run   anywhere: the same steps without a GPU (checks the list, prints the install command,
#                                  runs gpu_check.py --dry-run), as the test suite does
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=bench/gpu/wheels.txt
WHEEL_DIR=.whl
SITE=/tmp/site
PYTHON=${PYTHON:-python3}

pinned() { grep -Ev '^\s*(#|$)' "$WHEELS"; }

# Every line is name==version: the GPU machine installs exactly these, without resolving anything.
while read -r line; do
  [[ "$line" =~ ^[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+$ ]] || { echo "unpinned line in $WHEELS: $line" >&2; exit 2; }
done < <(pinned)

if [[ "${1:-}" == "fetch" ]]; then
  mkdir -p "$WHEEL_DIR"
  pinned | xargs "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d "$WHEEL_DIR"
  exit 0
fi

install=("$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE")
if [[ "${1:-}" == "--dry-run" ]]; then
  echo "would install: ${install[*]} $WHEEL_DIR/*.whl ($(pinned | wc -l) pinned wheels)"
  exec "$PYTHON" bench/gpu_check.py --dry-run
fi

ls "$WHEEL_DIR"/*.whl >/dev/null 2>&1 || { echo "no wheels in $WHEEL_DIR: run 'bench/gpu_check.sh fetch' first" >&2; exit 2; }
"${install[@]}" "$WHEEL_DIR"/*.whl
export PYTHONPATH="$PWD/src:$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec timeout 480 "$PYTHON" bench/gpu_check.py "$@"
