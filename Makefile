# The README's two commands: `make run` and `make test`. Everything else here serves them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
ISENGARD := $(VENV)/bin/isengard
TORCH_CPU_VERSION := 2.13.0

.PHONY: run test checks venv web web-deps lint typecheck pytest rehearsal web-test e2e api-types chromium clean bench

# The environment: a venv under the repo. On a machine without an NVIDIA GPU torch is installed first as the
# local CPU build, so that nothing later pulls the CUDA packages.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip 2>/dev/null || true
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PIP) install --quiet "torch==$(TORCH_CPU_VERSION)"; fi
	$(PIP) install --quiet -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

web-deps: web/node_modules/.installed

web: web-deps
	cd web && npm run build

# Debian's Chromium for the browser tests (never a browser download of the test tool).
chromium:
	@if ! test -x /usr/bin/chromium; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; \
	fi

run: venv web
	$(ISENGARD) up

lint: venv
	$(VENV)/bin/ruff check src tests bench e2e
	$(VENV)/bin/ruff format --check src tests bench e2e

typecheck: venv
	$(VENV)/bin/mypy

api-types: venv web-deps
	$(PY) -m isengard.api.openapi_export web/openapi.json
	cd web && npm run gen:api

web-test: web-deps
	cd web && npm run typecheck && npm run test

# Three test processes, each taking whole modules (module fixtures start once): most tests wait on worker processes,
# leases and servers rather than compute, so three fit on two cores.
PYTEST_PROCESSES ?= 3

pytest: venv web
	$(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_PROCESSES) --dist loadfile tests

# The whole production path at full size on a fake CUDA GPU, every base and profile (tests/rehearsal, part of the
# pytest target too), alone and with its table of peaks against the planner printed (docs/REHEARSAL.md).
rehearsal: venv
	$(PY) -m pytest -q -p no:cacheprovider tests/rehearsal -s

e2e: venv web chromium
	$(PY) -m pytest -q -p no:cacheprovider e2e

# Every check side by side (each one's output printed whole when it ends): lint, types, web tests, the Python
# tests and the browser tests. The last line is the suite's time.
checks: lint typecheck web-test pytest e2e

test:
	@started=$$(date +%s); \
	$(MAKE) --no-print-directory -j 6 --output-sync=target checks; \
	status=$$?; elapsed=$$(( $$(date +%s) - started )); \
	echo "make test: $$([ $$status = 0 ] && echo passed || echo FAILED) in $$(( elapsed / 60 )) min $$(( elapsed % 60 )) s"; \
	exit $$status

bench: venv
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) web/node_modules web/dist
