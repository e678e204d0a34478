"""A real Dask cluster on loopback for tests: scheduler and workers as separate processes.

Every process binds 127.0.0.1 with random ports (``--port 0``, dashboards on ``:0``), runs
without a nanny (so killing a worker kills it for good), and is stopped by pid at the end.
Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

DASK = str(Path(sys.executable).with_name("dask"))
#: the plugin folder the test workers (and supervisors) load agents from
PLUGINS = Path(__file__).with_name("plugins")
#: the test deployment's signing key, handed to workers through their environment only
SIGNING_KEY = bytes(range(32))


def worker_env() -> dict[str, str]:
    """Environment giving a worker the test agents and the signing key."""
    return {
        "AGENTKIT_PLUGIN_PATH": str(PLUGINS),
        "AGENTKIT_SIGNING_KEY": SIGNING_KEY.hex(),
    }


START_TIMEOUT = 30.0


class ClusterError(RuntimeError):
    """The loopback cluster did not come up in time."""


class LoopbackCluster:
    """A scheduler plus named workers, each its own OS process on 127.0.0.1.

    Args:
        workdir: private directory for the scheduler file, logs and worker scratch space.
        env: extra environment for every worker (e.g. the plugin folder and signing key).
        nthreads: threads per worker.
    """

    def __init__(
        self, workdir: Path, *, env: Mapping[str, str] | None = None, nthreads: int = 1
    ) -> None:
        self.workdir = workdir
        self.env = dict(env or {})
        self.nthreads = nthreads
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.address = ""

    # --- lifecycle -----------------------------------------------------------------------

    def start_scheduler(self, *, env: Mapping[str, str] | None = None) -> str:
        sched_file = self.workdir / "scheduler.json"
        sched_file.unlink(missing_ok=True)
        self.scheduler = self._spawn(
            "scheduler",
            [
                DASK,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                "127.0.0.1:0",
                "--scheduler-file",
                str(sched_file),
            ],
            env=dict(env or {}),
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise ClusterError(f"dask scheduler exited: {self.log('scheduler')[-2000:]}")
            try:
                self.address = json.loads(sched_file.read_text())["address"]
                return self.address
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                time.sleep(0.05)
        raise ClusterError("dask scheduler did not write its scheduler file in time")

    def start_worker(self, name: str, *, env: Mapping[str, str] | None = None) -> None:
        """Start worker ``name`` (returns at once; see :meth:`wait_for_workers`)."""
        assert self.address, "start the scheduler first"
        scratch = self.workdir / f"scratch-{name}"
        scratch.mkdir(exist_ok=True)
        self.workers[name] = self._spawn(
            name,
            [
                DASK,
                "worker",
                self.address,
                "--host",
                "127.0.0.1",
                "--no-nanny",
                "--dashboard-address",
                "127.0.0.1:0",
                "--nthreads",
                str(self.nthreads),
                "--name",
                name,
                "--local-directory",
                str(scratch),
                "--death-timeout",
                "30",
            ],
            env={**self.env, **(env or {})},
        )

    def wait_for_workers(self, n: int, timeout: float = START_TIMEOUT) -> None:
        """Block until the scheduler lists ``n`` workers (bounded by ``timeout``)."""
        from distributed import Client

        with Client(self.address, timeout=timeout) as client:
            try:
                client.wait_for_workers(n, timeout=timeout)
            except TimeoutError as exc:
                logs = {w: self.log(w)[-1500:] for w in self.workers}
                raise ClusterError(f"{n} workers did not register in time: {logs}") from exc

    def kill_worker(self, name: str) -> None:
        """SIGKILL worker ``name`` (no goodbye to the scheduler)."""
        proc = self.workers[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop every process this cluster started, by pid; SIGKILL what lingers."""
        # Workers first: a worker whose scheduler vanished first waits to reconnect.
        for group in (list(self.workers.values()), [self.scheduler] if self.scheduler else []):
            for proc in group:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in group:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- internals -----------------------------------------------------------------------

    def _spawn(
        self, name: str, argv: list[str], *, env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        # Never let a test's dask config (e.g. from the user's home) change the cluster.
        full_env["DASK_CONFIG"] = str(self.workdir / "dask-config")
        try:
            return subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=self.workdir
            )
        finally:
            log.close()
