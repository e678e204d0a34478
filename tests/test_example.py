"""examples/supervisor.py as a user runs it: a subprocess, no TTY, a fresh database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agentkit.status import RunStatus
from agentkit.store.sqlite import SQLiteStore
from agentkit.supervisor import Supervisor

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "supervisor.py"
USERS = ("user-001", "user-002", "user-003")


def run_example(*args: str, env_key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AGENTKIT_SIGNING_KEY"}
    if env_key is not None:
        env["AGENTKIT_SIGNING_KEY"] = env_key
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )


async def test_example_runs_users_prints_table_and_persists(tmp_path):
    db = tmp_path / "example.db"
    url = f"sqlite:///{db}"
    proc = run_example("--users", "3", "--concurrency", "2", "--store", url)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    # progress bar: plain lines on a non-TTY stderr, ending at 100%
    assert "100% 12/12 stages, 3/3 runs" in proc.stderr
    lines = proc.stdout.splitlines()
    header = lines[0].split()
    assert header[:3] == ["user", "status", "stages"] and "replaced" in header
    rows = [line for line in lines if line.startswith("user-")]
    assert [r.split()[0] for r in rows] == list(USERS)
    for row in rows:
        assert row.split()[1] == "succeeded"
        assert "4 succeeded" in row and "$" in row
        assert "data: " in row and "Connection" in row  # what the sanitizer replaced
    assert "3/3 runs succeeded" in proc.stdout

    # the key file beside the database decodes what was stored, per user
    key_file = db.with_suffix(".key")
    assert key_file.exists() and (key_file.stat().st_mode & 0o777) == 0o600
    key = bytes.fromhex(key_file.read_text())
    store = SQLiteStore(str(db), recover=False)
    async with Supervisor(store=store, signing_key=key) as sup:
        for user in USERS:
            runs = await sup.list_runs(user)
            assert len(runs) == 1 and runs[0].status is RunStatus.SUCCEEDED
            stored = await sup.get_run(user, runs[0].run_id)
            assert stored.output("reporting")["report"]["account"] == user
            assert "$.db.connection" in {e.path for e in stored.stages["data"].report.entries}
    await store.aclose()

    # a second run reuses the key: both runs' records stay readable
    again = run_example("--users", "1", "--store", url)
    assert again.returncode == 0, again.stderr
    assert key_file.read_text().strip() == key.hex()
    store = SQLiteStore(str(db), recover=False)
    async with Supervisor(store=store, signing_key=key) as sup:
        runs = await sup.list_runs("user-001")
        assert len(runs) == 2
        for r in runs:
            assert (await sup.get_run("user-001", r.run_id)).ok
    await store.aclose()


def test_example_rejects_a_bad_key_and_bad_flags(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    proc = run_example("--users", "1", "--store", url, env_key="not-hex")
    assert proc.returncode != 0 and "AGENTKIT_SIGNING_KEY must be a hex string" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_example("--users", "0", "--store", url)
    assert proc.returncode == 2 and "at least 1" in proc.stderr
    proc = run_example(
        "--users", "1", "--store", "nosuch://x", "--key-file", str(tmp_path / "k.key")
    )
    assert proc.returncode == 2 and "UnknownBackendError" in proc.stderr
    assert "Traceback" not in proc.stderr
