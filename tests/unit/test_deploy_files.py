"""deploy/: what can be checked without a Docker engine.

The image and compose file must work the first time someone runs `docker compose up`: every setting they pass is
one Isengard reads, the Node stage can build the web bundle, the Python and torch versions are ones the project
supports, and every command they run exists in the CLI.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from pydantic_settings import BaseSettings

import isengard

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
ENV_EXAMPLE = (DEPLOY / ".env.example").read_text()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())

# Variables that are not Isengard settings: Hugging Face's cache location, the Postgres image's, the image's own
# environment, and compose's own (where the API is published).
FOREIGN_VARIABLES = {
    "HF_HOME",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "PATH",
    "PYTHONUNBUFFERED",
    "DEBIAN_FRONTEND",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "API_PUBLISH",
}


# --- helpers -------------------------------------------------------------------------------------------------------


def _settings_classes() -> list[type[BaseSettings]]:
    """Every settings model in the package (the core settings and any plugin's own)."""
    for module in pkgutil.walk_packages(isengard.__path__, "isengard."):
        if ".migrations" in module.name or module.name.endswith("__main__"):
            continue
        importlib.import_module(module.name)
    found: list[type[BaseSettings]] = []
    pending: list[type[BaseSettings]] = [BaseSettings]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            pending.append(sub)
            if sub.__module__.startswith("isengard."):
                found.append(sub)
    return found


def _env_names(cls: type[BaseSettings]) -> set[str]:
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            names.update(str(choice).upper() for choice in choices)
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{field_name.upper()}")
    return names


def _settings_isengard_reads() -> set[str]:
    return set().union(*(_env_names(cls) for cls in _settings_classes()))


def _is_isengard_variable(name: str) -> bool:
    return name.startswith("ISENGARD_") or name in {"DATABASE_URL", "REDIS_URL"}


def _compose_environment() -> dict[str, dict[str, str]]:
    """service -> environment, with YAML anchors already resolved by the loader."""
    result: dict[str, dict[str, str]] = {}
    for name, service in COMPOSE["services"].items():
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        result[name] = {str(k): str(v) for k, v in env.items()}
    return result


def _dockerfile_env() -> set[str]:
    names: set[str] = set()
    for line in re.findall(r"^ENV\s+(.+?)(?<!\\)$", DOCKERFILE, flags=re.M | re.S):
        names.update(re.findall(r"([A-Z_][A-Z0-9_]*)=", line))
    return names


def _env_example_names() -> set[str]:
    return {line.split("=", 1)[0].strip().lstrip("# ").strip() for line in ENV_EXAMPLE.splitlines() if "=" in line}


def _stages() -> list[tuple[str, str | None]]:
    return [(image, alias) for image, alias in re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", DOCKERFILE, flags=re.M)]


def _arg(name: str) -> str:
    match = re.search(rf"^ARG\s+{name}=(\S+)", DOCKERFILE, flags=re.M)
    assert match, f"the Dockerfile pins {name} with an ARG default"
    return match.group(1)


def _satisfies_node_range(version: Version, node_range: str) -> bool:
    """npm's semver ranges as used in `engines` (|| of space-separated comparators, ^ and ~ included)."""

    def one(comparator: str) -> bool:
        match = re.fullmatch(r"(\^|~|>=|<=|>|<|=)?v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", comparator)
        assert match, f"unreadable range {comparator!r}"
        op, major, minor, patch = match.group(1) or "=", int(match[2]), int(match[3] or 0), int(match[4] or 0)
        bound = Version(f"{major}.{minor}.{patch}")
        if op == "^":
            return bound <= version < Version(f"{major + 1}.0.0")
        if op == "~":
            return bound <= version < Version(f"{major}.{minor + 1}.0")
        return {
            ">=": version >= bound,
            "<=": version <= bound,
            ">": version > bound,
            "<": version < bound,
            "=": version == bound,
        }[op]

    return any(all(one(c) for c in alternative.split()) for alternative in node_range.split("||"))


# --- the Dockerfile ------------------------------------------------------------------------------------------------


def test_node_stage_builds_the_web_bundle_with_a_node_vite_accepts() -> None:
    stages = _stages()
    node_images = [image for image, _ in stages if image.startswith("node:")]
    assert node_images, "a Node stage builds web/dist (the runtime image has no Node)"
    tag = node_images[0].split(":", 1)[1]
    match = re.match(r"(\d+\.\d+\.\d+)", tag)
    assert match, f"the Node image is pinned to an exact version, not {tag!r}"
    node = Version(match.group(1))

    web_engines = json.loads((REPO / "web" / "package.json").read_text())["engines"]["node"]
    assert _satisfies_node_range(node, web_engines), f"node {node} vs web/package.json engines {web_engines}"
    vite_package = REPO / "web" / "node_modules" / "vite" / "package.json"
    if vite_package.exists():
        vite_engines = json.loads(vite_package.read_text())["engines"]["node"]
        assert _satisfies_node_range(node, vite_engines), f"node {node} vs Vite's engines {vite_engines}"
    assert "npm ci" in DOCKERFILE and "npm run build" in DOCKERFILE
    assert re.search(r"COPY\s+--from=\S+\s+\S*dist", DOCKERFILE), "the runtime stage copies the built bundle"


def test_runtime_is_cuda_with_a_supported_python_and_a_pinned_cuda_torch() -> None:
    runtime_image = _stages()[-1][0]
    assert runtime_image.startswith("nvidia/cuda:") and "runtime" in runtime_image

    python = Version(_arg("PYTHON_VERSION"))
    assert python in SpecifierSet(PYPROJECT["project"]["requires-python"])

    torch_version = Version(_arg("TORCH_VERSION"))
    torch_requirement = next(d for d in PYPROJECT["project"]["dependencies"] if re.match(r"torch\b", d))
    assert torch_version in SpecifierSet(torch_requirement.removeprefix("torch"))
    assert re.fullmatch(r"cu\d{3}", _arg("TORCH_CUDA")), "a CUDA build of torch, e.g. cu128"
    assert "download.pytorch.org/whl/${TORCH_CUDA}" in DOCKERFILE
    # Installed before the package, so the package's own torch requirement is already met by the CUDA build.
    assert DOCKERFILE.index("torch==${TORCH_VERSION}") < DOCKERFILE.index(".[postgres]")


def test_image_runs_as_a_user_with_data_and_model_volumes_and_a_healthcheck() -> None:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, flags=re.M)
    assert users and users[-1] not in {"root", "0"}
    volumes = re.search(r"^VOLUME\s+(\[.*\])", DOCKERFILE, flags=re.M)
    assert volumes
    declared = set(json.loads(volumes.group(1)))
    hf_home = re.search(r"HF_HOME=(\S+)", DOCKERFILE)
    assert hf_home and "/data" in declared and hf_home.group(1) in declared
    healthcheck = re.search(r"^HEALTHCHECK\s.*", DOCKERFILE, flags=re.M | re.S)
    assert healthcheck and "/api/auth/session" in healthcheck.group(0)


# --- compose -------------------------------------------------------------------------------------------------------


def test_every_setting_passed_is_one_isengard_reads() -> None:
    known = _settings_isengard_reads()
    passed = set(_dockerfile_env()) | _env_example_names()
    for env in _compose_environment().values():
        passed |= set(env)
    unknown = sorted(name for name in passed if _is_isengard_variable(name) and name not in known)
    assert not unknown, f"set by deploy/ but read by nothing: {unknown}"
    foreign = sorted(n for n in passed if not _is_isengard_variable(n) and n not in FOREIGN_VARIABLES)
    assert not foreign, f"unexpected variables: {foreign}"


def test_env_example_lists_every_setting_compose_uses_with_a_comment() -> None:
    listed = _env_example_names()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (DEPLOY / "compose.yaml").read_text()))
    assert used <= listed, f"missing from .env.example: {sorted(used - listed)}"
    lines = ENV_EXAMPLE.splitlines()
    for index, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert index > 0 and lines[index - 1].startswith("#"), f"no comment above {line!r}"


def test_services_wait_for_healthy_dependencies_and_a_finished_migration() -> None:
    services = COMPOSE["services"]
    assert {"redis", "postgres", "migrate", "api", "worker"} <= set(services)
    assert "--appendonly" in " ".join(services["redis"]["command"])
    for name in ("redis", "postgres", "api"):
        assert "healthcheck" in services[name] or name == "api", f"{name} has a healthcheck"
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # The image's healthcheck asks the API; the one-shot migration and the worker serve no HTTP.
    for name in ("migrate", "worker"):
        assert services[name]["healthcheck"] == {"disable": True}
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]


def test_token_is_required_when_the_api_is_published() -> None:
    api_env = _compose_environment()["api"]
    assert api_env.get("ISENGARD_HOST") == "0.0.0.0"
    assert re.fullmatch(r"\$\{ISENGARD_API_TOKEN:\?.+\}", api_env["ISENGARD_API_TOKEN"])


@pytest.mark.parametrize("service", ["migrate", "api", "worker"])
def test_commands_exist_in_the_cli(service: str) -> None:
    command = COMPOSE["services"][service].get("command")
    if command is None:  # the image's default command
        match = re.search(r"^CMD\s+(\[.*\])", DOCKERFILE, flags=re.M)
        assert match
        command = json.loads(match.group(1))
    assert command[0] == "isengard"
    result = subprocess.run(
        [sys.executable, "-m", "isengard.cli", *command[1:], "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_the_image_serves_the_web_bundle_from_where_it_copies_it(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from isengard.api.app import create_app
    from isengard.config import load_settings

    dist_env = re.search(r"ISENGARD_WEB_DIST=(\S+)", DOCKERFILE)
    assert dist_env and re.search(rf"COPY\s+--from=\S+\s+\S+\s+{re.escape(dist_env.group(1))}\s*$", DOCKERFILE, re.M)
    bundle = tmp_path / "dist"
    bundle.mkdir()
    (bundle / "index.html").write_text("<title>the bundle</title>")
    settings = load_settings(data_dir=tmp_path / "data", web_dist=bundle)
    response = TestClient(create_app(settings)).get("/characters")
    assert response.status_code == 200 and "the bundle" in response.text
