"""How workers get their agents and signing key: environment, key file, or a worker plugin."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from distributed import Client
from loopback_cluster import PLUGINS, SIGNING_KEY, LoopbackCluster

from agentkit._dask_worker import (
    ENV_PLUGIN_PATH,
    ENV_SIGNING_KEY,
    ENV_SIGNING_KEY_FILE,
    AgentkitWorkerPlugin,
    WorkerSettings,
    parse_signing_key,
)
from agentkit.codec import Codec
from agentkit.dask_executor import DaskExecutor
from agentkit.errors import AgentNotOnWorkerError, ConfigurationError
from agentkit.registry import AgentRegistry
from agentkit.status import RunStatus
from agentkit.supervisor import Supervisor

pytestmark = pytest.mark.timeout(120)


def test_settings_from_env_and_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key.hex"
    key_file.write_text(SIGNING_KEY.hex() + "\n")
    s = WorkerSettings.from_env(
        {ENV_PLUGIN_PATH: f"/a{os.pathsep}/b", ENV_SIGNING_KEY_FILE: str(key_file)}
    )
    assert s.plugin_paths == ("/a", "/b") and s.entry_points
    assert s.signing_key == SIGNING_KEY
    assert SIGNING_KEY.hex() not in repr(s)
    assert WorkerSettings.from_env({ENV_SIGNING_KEY: SIGNING_KEY.hex()}).signing_key == SIGNING_KEY
    assert WorkerSettings.from_env({"AGENTKIT_ENTRY_POINTS": "0"}).entry_points is False
    assert WorkerSettings.from_env({}).signing_key is None


def test_bad_keys_are_rejected_without_quoting_them(tmp_path: Path) -> None:
    secret = "zz" + SIGNING_KEY.hex()
    with pytest.raises(ConfigurationError) as err:
        parse_signing_key(secret)
    assert secret not in str(err.value)
    with pytest.raises(ConfigurationError, match="at least 16 bytes"):
        parse_signing_key("abcd")
    with pytest.raises(ConfigurationError, match="cannot read"):
        WorkerSettings.from_env({ENV_SIGNING_KEY_FILE: str(tmp_path / "missing")})


@pytest.fixture(scope="module")
def bare_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackCluster]:
    """Two workers with no agentkit settings at all: no plugin folder, no key."""
    cluster = LoopbackCluster(tmp_path_factory.mktemp("bare"), env={"AGENTKIT_ENTRY_POINTS": "0"})
    try:
        cluster.start_scheduler()
        cluster.start_worker("bare1")
        cluster.start_worker("bare2")
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def bare_client(bare_cluster: LoopbackCluster) -> AsyncIterator[Client]:
    async with Client(bare_cluster.address, asynchronous=True, timeout=30) as client:
        yield client


async def test_worker_plugin_installs_agents_and_key_on_workers(
    bare_client: Client, tmp_path: Path
) -> None:
    registry = AgentRegistry()
    registry.load_path(PLUGINS)

    async def run_once(executor: DaskExecutor) -> object:
        async with Supervisor(
            registry,
            store=f"sqlite:///{tmp_path / 'runs.db'}",
            signing_key=SIGNING_KEY,
            executor=executor,
        ) as sup:
            return await asyncio.wait_for(sup.run("gina", ["dt_echo"], input=7), timeout=30)

    # Without the plugin the worker lacks the agent: a typed failure naming agent and worker.
    before = await run_once(DaskExecutor(bare_client))
    stage = before.stages["dt_echo"]  # type: ignore[attr-defined]
    assert stage.error.type.endswith(AgentNotOnWorkerError.__name__)
    assert "'dt_echo'" in stage.error.message and "bare" in stage.error.message

    # The plugin (registered by the executor at start) fixes every worker, present and future.
    plugin = AgentkitWorkerPlugin([str(PLUGINS)], entry_points=False, signing_key=SIGNING_KEY)
    assert SIGNING_KEY.hex() not in repr(plugin)
    after = await run_once(DaskExecutor(bare_client, plugin=plugin))
    assert after.status is RunStatus.SUCCEEDED, after.error  # type: ignore[attr-defined]
    assert after.stages["dt_echo"].output["input"] == 7  # type: ignore[attr-defined]


async def test_plugin_ships_a_custom_codec_to_workers(bare_client: Client, tmp_path: Path) -> None:
    registry = AgentRegistry()
    registry.load_path(PLUGINS)
    codec = Codec(signing_keys={"rotated-2": b"k" * 32, "rotated-1": b"j" * 32})
    plugin = AgentkitWorkerPlugin([str(PLUGINS)], entry_points=False, codec=codec)
    async with Supervisor(
        registry,
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        codec=codec,
        executor=DaskExecutor(bare_client, plugin=plugin),
    ) as sup:
        result = await asyncio.wait_for(sup.run("kim", ["dt_contaminated"]), timeout=30)
        assert result.status is RunStatus.SUCCEEDED, result.error
        stored = await sup.store.list_results("kim", limit=1)
    assert codec.inspect(stored[0].blob).key_id == codec.signing_key_id


def test_missing_dask_extra_names_the_pip_line() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "try:\n    import agentkit.dask_executor\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "MissingDependencyError" in out.stdout, out.stdout + out.stderr
    assert "agentkit[dask]" in out.stdout
