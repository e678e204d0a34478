"""AgentRegistry: explicit registration, plugin folders, entry points, clear errors."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from agentkit.agent import AgentContext, SubAgent
from agentkit.errors import DuplicateAgentError, PluginLoadError, UnknownAgentError
from agentkit.registry import AgentRegistry
from agentkit.testing import make_agent

PLUGIN = """
from agentkit.agent import SubAgent

class {cls}(SubAgent):
    name = "{name}"
    version = "{version}"
    depends_on = {deps!r}
    description = "{name} plugin"

    async def run(self, ctx):
        return {{"agent": "{name}"}}
"""


def _plugin(
    folder: Path, file: str, name: str, version: str = "1", deps: tuple[str, ...] = ()
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file).write_text(
        PLUGIN.format(cls=name.title().replace("_", ""), name=name, version=version, deps=deps)
    )


def test_register_get_create_names_and_decorator() -> None:
    reg = AgentRegistry()
    A = make_agent("alpha")

    @reg.register
    class Beta(SubAgent):
        name = "beta"
        version = "3"
        depends_on = ("alpha",)

        async def run(self, ctx: AgentContext) -> int:
            return 1

    reg.register(A)
    reg.register(A)  # the same class twice is fine
    assert reg.names() == ["alpha", "beta"]
    assert reg.get("beta") is Beta and "beta" in reg and len(reg) == 2
    first, second = reg.create("beta"), reg.create("beta")
    assert isinstance(first, Beta) and first is not second
    desc = {d["name"]: d for d in reg.describe()}
    assert desc["beta"]["version"] == "3" and desc["beta"]["depends_on"] == ["alpha"]


def test_duplicate_names_are_an_error_naming_both() -> None:
    reg = AgentRegistry([make_agent("dup")])
    with pytest.raises(DuplicateAgentError, match="dup"):
        reg.register(make_agent("dup"))


def test_unknown_agent_lists_the_known_ones() -> None:
    reg = AgentRegistry([make_agent("one"), make_agent("two")])
    with pytest.raises(UnknownAgentError, match="known agents: one, two"):
        reg.get("three")


def test_load_path_registers_every_plugin_file(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    _plugin(folder, "first.py", "first")
    _plugin(folder, "second.py", "second", version="2", deps=("first",))
    (folder / "_private.py").write_text("raise RuntimeError('never imported')\n")
    (folder / "helpers.py").write_text("VALUE = 1\n")
    reg = AgentRegistry()
    assert sorted(reg.load_path(folder)) == ["first", "second"]
    assert reg.get("second").version == "2"
    assert reg.get("second").depends_on == ("first",)
    src = {d["name"]: d["source"] for d in reg.describe()}
    assert src["first"].endswith("first.py")
    # loading again is idempotent (modules are reused)
    assert sorted(reg.load_path(folder)) == ["first", "second"]


def test_broken_plugin_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "broken.py").write_text("import definitely_not_a_module_xyz\n")
    with pytest.raises(PluginLoadError, match=r"broken\.py.*ModuleNotFoundError"):
        AgentRegistry().load_path(folder)


def test_malformed_agent_in_plugin_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "bad.py").write_text(
        textwrap.dedent(
            """
            from agentkit.agent import SubAgent
            class Bad(SubAgent):
                name = "bad name"
                async def run(self, ctx):
                    return 1
            """
        )
    )
    with pytest.raises(PluginLoadError, match=r"bad\.py.*name must be"):
        AgentRegistry().load_path(folder)


def test_duplicate_across_plugin_files(tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    _plugin(folder, "a.py", "same")
    _plugin(folder, "b.py", "same")
    with pytest.raises(DuplicateAgentError, match="same"):
        AgentRegistry().load_path(folder)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(PluginLoadError, match="does not exist"):
        AgentRegistry().load_path(tmp_path / "nope")


@pytest.fixture
def installed_plugin(tmp_path: Path) -> object:
    """A real installed distribution (dist-info on sys.path) advertising entry points."""
    site = tmp_path / "site"
    pkg = site / "ak_ep_plugin_test"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        PLUGIN.format(cls="EpAgent", name="ep_agent", version="7", deps=())
        + PLUGIN.format(cls="EpOther", name="ep_other", version="1", deps=())
    )
    (site / "broken_ep_mod.py").write_text("raise ImportError('plugin is broken')\n")
    dist = site / "ak_ep_plugin_test-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ak-ep-plugin-test\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[agentkit.test_good]\n"
        "one = ak_ep_plugin_test:EpAgent\n"
        "mod = ak_ep_plugin_test\n"
        "[agentkit.test_broken]\n"
        "bad = broken_ep_mod:Thing\n"
    )
    sys.path.insert(0, str(site))
    yield site
    sys.path.remove(str(site))
    for m in ("ak_ep_plugin_test", "broken_ep_mod"):
        sys.modules.pop(m, None)


def test_load_entry_points(installed_plugin: object) -> None:
    reg = AgentRegistry()
    names = reg.load_entry_points("agentkit.test_good")
    assert sorted(set(names)) == ["ep_agent", "ep_other"]
    assert reg.get("ep_agent").version == "7"
    assert reg.load_entry_points("agentkit.no_such_group") == []


def test_broken_entry_point_names_it(installed_plugin: object) -> None:
    with pytest.raises(PluginLoadError, match=r"entry point bad = broken_ep_mod:Thing"):
        AgentRegistry().load_entry_points("agentkit.test_broken")
