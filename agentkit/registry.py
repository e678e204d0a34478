"""Find and hold agent plugins: explicit registration, a plugin folder, entry points."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from agentkit.agent import SubAgent, validate_agent_class
from agentkit.errors import DuplicateAgentError, PluginLoadError, UnknownAgentError

__all__ = ["AgentRegistry"]

A = TypeVar("A", bound=type[SubAgent])

ENTRY_POINT_GROUP = "agentkit.agents"


class AgentRegistry:
    """Agent classes by name.

    Args:
        agents: classes to register right away.

    Example::

        registry = AgentRegistry()
        registry.load_path("agents/")          # every SubAgent defined in agents/*.py
        registry.register(MyAgent)             # or explicitly (also works as a decorator)
    """

    def __init__(self, agents: Iterable[type[SubAgent]] = ()) -> None:
        self._agents: dict[str, type[SubAgent]] = {}
        self._sources: dict[str, str] = {}
        for cls in agents:
            self.register(cls)

    def register(self, cls: A, *, source: str | None = None) -> A:
        """Add ``cls``; returns it, so this works as a class decorator.

        Raises:
            AgentDefinitionError: ``cls`` is not a well-formed SubAgent subclass.
            DuplicateAgentError: another class is registered under the same name.
        """
        validate_agent_class(cls)
        existing = self._agents.get(cls.name)
        if existing is not None and existing is not cls:
            raise DuplicateAgentError(
                f"agent name {cls.name!r} is used by both {_where(existing)} "
                f"({self._sources.get(cls.name, '?')}) and {_where(cls)}"
                f"{f' ({source})' if source else ''}; rename one of them"
            )
        self._agents[cls.name] = cls
        self._sources[cls.name] = source or _source_of(cls)
        return cls

    def load_path(self, folder: str | Path) -> list[str]:
        """Import every ``*.py`` file in ``folder`` and register the agents each defines.

        Files starting with ``_`` are skipped. Returns the names registered.

        Raises:
            PluginLoadError: the folder is missing or a file fails to import (names the file).
            DuplicateAgentError: two plugins use one name.
        """
        path = Path(folder)
        if not path.is_dir():
            raise PluginLoadError(f"plugin folder {str(path)!r} does not exist or is not a folder")
        tag = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        names: list[str] = []
        for file in sorted(path.glob("*.py")):
            if file.name.startswith("_"):
                continue
            module_name = f"agentkit_plugins_{tag}.{file.stem}"
            module = sys.modules.get(module_name)
            if module is None:
                module = _import_file(module_name, file)
            names += self._register_module(module, source=str(file))
        return names

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Register agents advertised under the entry point ``group``.

        An entry point may name a SubAgent class, a module (all its agents), or a list of
        classes. Returns the names registered.

        Raises:
            PluginLoadError: an entry point fails to load (names it).
        """
        names: list[str] = []
        for ep in importlib.metadata.entry_points(group=group):
            source = f"entry point {ep.name} = {ep.value}"
            try:
                obj = ep.load()
            except Exception as exc:
                raise PluginLoadError(
                    f"{source} failed to load: {type(exc).__name__}: {exc}; fix or uninstall "
                    "the package that provides it"
                ) from exc
            if isinstance(obj, ModuleType):
                names += self._register_module(obj, source=source)
            elif isinstance(obj, list | tuple):
                for cls in obj:
                    names.append(self.register(cls, source=source).name)
            else:
                names.append(self.register(obj, source=source).name)
        return names

    def _register_module(self, module: ModuleType, *, source: str) -> list[str]:
        names = []
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, SubAgent)
                and obj.__module__ == module.__name__
                and getattr(obj, "name", None) is not None
            ):
                names.append(self.register(obj, source=source).name)
        return names

    def get(self, name: str) -> type[SubAgent]:
        """The class registered as ``name``.

        Raises:
            UnknownAgentError: no such agent (the message lists the known ones).
        """
        try:
            return self._agents[name]
        except KeyError:
            raise UnknownAgentError(
                f"unknown agent {name!r}; known agents: {', '.join(self.names()) or '(none)'}"
            ) from None

    def create(self, name: str) -> SubAgent:
        """A fresh instance of the agent ``name``."""
        return self.get(name)()

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._agents)

    def __contains__(self, name: object) -> bool:
        return name in self._agents

    def __len__(self) -> int:
        return len(self._agents)

    def describe(self) -> list[dict[str, Any]]:
        """One plain dict per agent (name, version, depends_on, timeout, retries, …)."""
        out = []
        for name in self.names():
            cls = self._agents[name]
            out.append(
                {
                    "name": name,
                    "version": cls.version,
                    "depends_on": list(cls.depends_on),
                    "timeout": cls.timeout,
                    "retries": cls.retries,
                    "result_type": f"{cls.result_type.__module__}.{cls.result_type.__qualname__}",
                    "description": cls.description or _first_line(cls.__doc__),
                    "source": self._sources.get(name, ""),
                }
            )
        return out


def _import_file(module_name: str, file: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise PluginLoadError(f"cannot import plugin file {str(file)!r}")
    package = module_name.rpartition(".")[0]
    if package not in sys.modules:
        pkg = ModuleType(package)
        pkg.__path__ = [str(file.parent)]
        sys.modules[package] = pkg
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise PluginLoadError(
            f"plugin file {str(file)!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _source_of(cls: type) -> str:
    try:
        return inspect.getsourcefile(cls) or cls.__module__
    except TypeError:
        return cls.__module__


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0]
