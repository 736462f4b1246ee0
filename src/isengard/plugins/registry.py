"""Plugin discovery: the `isengard.<kind>` entry-point groups plus modules named in settings.

Built-ins register through the same entry points as third-party plugins. Two plugins with one name in one kind
are refused, because a job names its plugin and must always get the same one.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from isengard.domain import PluginKind
from isengard.plugins.api import Capability, Plugin

log = logging.getLogger(__name__)


class DuplicatePluginError(RuntimeError):
    pass


class UnknownPluginError(LookupError):
    pass


@dataclass
class PluginRecord:
    name: str
    kind: PluginKind
    cls: type[Plugin] | None
    source: str
    load_error: str | None = None

    @property
    def description(self) -> str:
        return self.cls.description if self.cls is not None else ""


@dataclass
class PluginRegistry:
    settings: Any = None
    records: dict[tuple[PluginKind, str], PluginRecord] = field(default_factory=dict)
    _instances: dict[tuple[PluginKind, str], Plugin] = field(default_factory=dict)

    def add(self, cls: type[Plugin], source: str) -> None:
        key = (PluginKind(cls.kind), cls.name)
        if key in self.records:
            raise DuplicatePluginError(
                f"two {cls.kind} plugins are named '{cls.name}' ({self.records[key].source} and {source})"
            )
        self.records[key] = PluginRecord(cls.name, PluginKind(cls.kind), cls, source)

    def names(self, kind: PluginKind) -> list[str]:
        return sorted(name for (k, name) in self.records if k == kind)

    def instances(self) -> list[Plugin]:
        """The plugins built so far (by `get`): those that may hold a model."""
        return list(self._instances.values())

    def get(self, kind: PluginKind, name: str) -> Plugin:
        key = (kind, name)
        record = self.records.get(key)
        if record is None:
            known = ", ".join(self.names(kind)) or "none"
            raise UnknownPluginError(f"no {kind} plugin named '{name}' (installed: {known})")
        if record.cls is None:
            raise UnknownPluginError(f"{kind} plugin '{name}' failed to load: {record.load_error}")
        if key not in self._instances:
            self._instances[key] = record.cls(self.settings)
        return self._instances[key]

    def capabilities(self, kind: PluginKind, name: str) -> Capability:
        record = self.records[(kind, name)]
        if record.cls is None:
            return Capability(available=False, reason=f"failed to load: {record.load_error}")
        try:
            return self.get(kind, name).capabilities()
        except Exception as exc:  # a broken plugin must not break /api/capabilities
            return Capability(available=False, reason=f"capability check failed: {exc}")


def _entry_point_group(kind: PluginKind) -> str:
    return f"isengard.{kind.value}"


def load_registry(settings: Any = None) -> PluginRegistry:
    registry = PluginRegistry(settings=settings)
    for kind in PluginKind:
        for ep in entry_points(group=_entry_point_group(kind)):
            try:
                cls = ep.load()
            except Exception as exc:
                # An optional dependency missing in one plugin must not hide the others.
                log.warning("plugin failed to load", extra={"plugin": ep.name, "error": str(exc)})
                registry.records[(kind, ep.name)] = PluginRecord(ep.name, kind, None, ep.value, str(exc))
                continue
            registry.add(cls, f"entry point {ep.value}")
    for module_name in getattr(settings, "plugin_modules", None) or []:
        module = importlib.import_module(module_name)
        for cls in getattr(module, "ISENGARD_PLUGINS", []):
            registry.add(cls, f"module {module_name}")
    return registry
