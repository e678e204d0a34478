"""The agents, run and runs subcommands, in process and as a real command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentkit.cli import main

ROOT = Path(__file__).resolve().parents[1]
AGENTS = str(ROOT / "agents")
PIPELINE = "triage,data,optimizations_core,reporting"
KEY = "ab" * 32


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTKIT_SIGNING_KEY", KEY)
    monkeypatch.delenv("AGENTKIT_STORE", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./agents here: every command names its folder
    return f"sqlite:///{tmp_path / 'cli.db'}"


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, kind: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert kind in lines[0] and "Traceback" not in err


def test_agents_table_and_json(capsys, store):
    code, out, _ = cli(capsys, "agents", "--agents-path", AGENTS, "--no-entry-points")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "version", "depends_on", "source"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {"triage", "data", "optimizations_core", "reporting"}
    assert rows["data"][1:3] == ["1.0", "triage"]
    assert rows["reporting"][2] == "triage,data,optimizations_core"
    assert rows["triage"][3].endswith("triage.py")
    code, out, _ = cli(capsys, "agents", "--agents-path", AGENTS, "--no-entry-points", "--json")
    assert code == 0
    assert [d["name"] for d in json.loads(out)] == [
        "data",
        "optimizations_core",
        "reporting",
        "triage",
    ]


def test_agents_missing_folder_is_one_line_exit_2(capsys, store):
    code, out, err = cli(capsys, "agents", "--agents-path", "no-such-dir")
    assert code == 2 and out == ""
    one_error_line(err, "PluginLoadError")


def test_run_then_list_and_show_scoped_by_user(capsys, store):
    code, out, err = cli(
        capsys,
        "run",
        PIPELINE,
        "--user",
        "user-001",
        "--input",
        '{"request": "cut our costs, urgent"}',
        "--store",
        store,
        "--agents-path",
        AGENTS,
    )
    assert code == 0, err
    first = out.splitlines()[0].split()
    assert first[0] == "run" and first[5] == "succeeded"
    run_id = first[1]
    assert out.count("succeeded") >= 5  # the run and its four stages
    assert "# AI spend report: user-001" in out

    code, out, _ = cli(capsys, "runs", "list", "--user", "user-001", "--store", store)
    assert code == 0
    assert out.splitlines()[2].split()[:2] == [run_id, "succeeded"]
    code, out, err = cli(capsys, "runs", "list", "--user", "user-002", "--store", store)
    assert code == 0 and out == "" and "no runs" in err

    code, out, _ = cli(capsys, "runs", "show", run_id, "--user", "user-001", "--store", store)
    assert code == 0
    assert "== data (succeeded)" in out and "$.db.connection" in out
    assert "# AI spend report: user-001" in out
    code, out, _ = cli(
        capsys, "runs", "show", run_id, "--user", "user-001", "--store", store, "--json"
    )
    shown = json.loads(out)
    assert shown["run_id"] == run_id and list(shown["stages"]) == PIPELINE.split(",")
    code, out, _ = cli(
        capsys, "runs", "show", run_id, "--user", "user-001", "--store", store, "--agent", "triage"
    )
    assert code == 0 and "== triage" in out and "== data" not in out

    # another user's run id is not found, and the error is one line
    code, out, err = cli(capsys, "runs", "show", run_id, "--user", "user-002", "--store", store)
    assert code == 2 and out == ""
    one_error_line(err, "RunNotFoundError")


def test_wrong_key_cannot_read(capsys, store, monkeypatch):
    code, out, _ = cli(
        capsys, "run", "triage", "--user", "u1", "--store", store, "--agents-path", AGENTS
    )
    assert code == 0
    run_id = out.split()[1]
    monkeypatch.setenv("AGENTKIT_SIGNING_KEY", "cd" * 32)
    code, _, err = cli(capsys, "runs", "show", run_id, "--user", "u1", "--store", store)
    assert code == 2
    one_error_line(err, "Error")


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["run", "nosuch", "--user", "u"], "UnknownAgentError"),
        (["run", "data", "--user", "u"], "MissingUpstreamError"),
        (["run", "triage", "--user", "u", "--input", "{bad"], "not valid JSON"),
        (["run", " , ", "--user", "u"], "at least one agent"),
        (["run", "triage", "--user", " u"], "InvalidUserIdError"),
        (["run", "triage", "--user", "u", "--cache", "nosuch://x"], "UnknownBackendError"),
    ],
)
def test_run_usage_errors_are_one_line_exit_2(capsys, store, argv, kind):
    code, out, err = cli(capsys, *argv, "--store", store, "--agents-path", AGENTS)
    assert code == 2 and out == ""
    one_error_line(err, kind)


def test_runs_without_a_key_is_a_clear_error(capsys, store, monkeypatch):
    monkeypatch.delenv("AGENTKIT_SIGNING_KEY")
    code, _, err = cli(capsys, "runs", "list", "--user", "u", "--store", "sqlite:///:memory:")
    assert code == 2
    one_error_line(err, "AGENTKIT_SIGNING_KEY")


def test_runs_with_a_missing_key_file_names_the_file_and_the_flag(capsys, store, monkeypatch):
    monkeypatch.delenv("AGENTKIT_SIGNING_KEY")
    code, _, err = cli(capsys, "runs", "list", "--user", "u", "--store", store)
    assert code == 2
    one_error_line(err, "cli.key' does not exist")
    assert "--key-file" in err


def test_real_command_prints_no_traceback(store):
    command = Path(sys.executable).with_name("agentkit")  # the installed console script
    proc = subprocess.run(
        [str(command), "run", "nosuch", "--user", "u", "--agents-path", AGENTS, "--store", store],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    one_error_line(proc.stderr, "UnknownAgentError")
    assert "known agents: data, optimizations_core, reporting, triage" in proc.stderr


def test_run_prints_events_in_order(capsys, store):
    code, _, err = cli(
        capsys,
        "run",
        "triage",
        "--user",
        "u1",
        "--store",
        store,
        "--agents-path",
        AGENTS,
        "--events",
    )
    assert code == 0
    kinds = [line.split()[1] for line in err.splitlines()]
    assert kinds == [
        "run_started",
        "agent_started",
        "classified",
        "agent_completed",
        "run_completed",
    ]
    assert [int(line.split()[0]) for line in err.splitlines()] == [1, 2, 3, 4, 5]


def test_unusable_store_path_is_one_line_exit_2(capsys, store, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    bad = f"sqlite:///{blocker / 'sub' / 'x.db'}"
    code, out, err = cli(
        capsys, "run", "triage", "--user", "u", "--store", bad, "--agents-path", AGENTS
    )
    assert code == 2 and out == ""
    one_error_line(err, "Error")


def test_a_closed_pipe_ends_quietly(tmp_path):
    # what `agentkit runs show … --json | head -1` does to a large output
    code = (
        "import sys\n"
        "from agentkit.cli._runtime_opts import guarded\n"
        "def spam(args):\n"
        "    for _ in range(100_000):\n"
        "        sys.stdout.write('x' * 99 + '\\n')\n"
        "    return 0\n"
        "raise SystemExit(guarded(spam)(None))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout.read(100) == b"x" * 99 + b"\n"
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err == b""
