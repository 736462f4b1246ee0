"""Plugins see Isengard only through `isengard.plugins.api`: importing any plugin module, in a fresh interpreter,
loads no API, database, queue or worker module, and no plugin module imports another Isengard module directly."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import isengard.plugins

PLUGINS_DIR = Path(isengard.plugins.__file__).parent
FORBIDDEN = ("isengard.api", "isengard.db", "isengard.queue", "isengard.worker", "isengard.jobs")
# A plugin module may import the plugin API, the shared vocabulary of types, and its own package. The model toolkit
# (profiles, planning, loading, offloading) reaches plugins through the plugin API too.
ALLOWED = ("isengard.plugins", "isengard.domain")


def plugin_modules() -> list[str]:
    names = []
    for path in sorted(PLUGINS_DIR.rglob("*.py")):
        relative = path.relative_to(PLUGINS_DIR.parent.parent).with_suffix("")
        if path.name != "__init__.py":
            names.append(".".join(relative.parts))
    return names


def isengard_imports(module: str) -> set[str]:
    path = PLUGINS_DIR.parent.parent / (module.replace(".", "/") + ".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from isengard.models import loading` imports the module isengard.models.loading.
            package = PLUGINS_DIR.parent.parent / node.module.replace(".", "/")
            names = [f"{node.module}.{a.name}" for a in node.names if (package / f"{a.name}.py").exists()]
            found.update(names or [node.module])
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "isengard" or name.startswith("isengard.")}


@pytest.mark.parametrize(
    "module",
    [m for m in plugin_modules() if ".training." in m or ".image." in m or ".caption." in m or ".evaluate." in m],
)
def test_a_plugin_module_imports_only_the_plugin_api_and_its_own_package(module: str) -> None:
    outside = {name for name in isengard_imports(module) if not name.startswith(ALLOWED)}
    assert not outside, f"{module} imports {sorted(outside)}: offer it through isengard.plugins.api"


def test_importing_plugins_loads_no_api_database_queue_or_worker_module() -> None:
    modules = [m for m in plugin_modules() if m != "isengard.plugins.registry"]
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    crossing = [name for name in loaded if name.startswith(FORBIDDEN)]
    assert not crossing, f"importing the plugins loaded {crossing}"
