"""``agentkit inspect MODULE:ATTR`` as a real command (``python -m agentkit``)."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agentkit.cli import main
from agentkit.cli.inspect_cmd import render_tree

MODULE = textwrap.dedent(
    """
    import os
    import threading

    LOCK = threading.Lock()
    RESULT = {
        "summary": {"items": [1, LOCK], "api_key": "sk-live-123"},
        "module": os,
        "fn": lambda: LOCK,
        "ok": [1, 2, 3],
    }
    CLEAN = {"rows": [{"id": 1, "name": "a"}]}

    class Box:
        value = {"nested": {"lock": LOCK}}

    def make():
        return {"made": LOCK}

    def boom():
        raise RuntimeError("no value today")
    """
)


@pytest.fixture
def pkg(tmp_path: Path) -> Path:
    (tmp_path / "inspect_target").mkdir()
    (tmp_path / "inspect_target" / "__init__.py").write_text("")
    (tmp_path / "inspect_target" / "results.py").write_text(MODULE)
    return tmp_path


def agentkit(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentkit", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_inspect_prints_both_reports_as_trees(pkg: Path) -> None:
    proc = agentkit(pkg, "inspect", "inspect_target.results:RESULT")
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert "sanitize: 4 change(s), lossy (redacted=1, replaced=3)" in out
    lines = out.splitlines()
    assert "├── .summary" in lines
    assert any(
        line.endswith("[1]  replaced  _thread.lock  live object (lock) cannot be stored")
        for line in lines
    )
    assert any(".api_key  redacted  str" in line for line in lines)
    assert "pickle: FAILED, 3 offender(s)" in out
    assert "cloudpickle: FAILED, 2 offender(s)" in out
    assert "TypeError: cannot pickle '_thread.lock' object" in out
    # cloudpickle localises the lambda's offending global
    assert any(".LOCK  _thread.lock" in line for line in lines)
    assert "sk-live-123" not in out


def test_inspect_clean_value_exits_zero(pkg: Path) -> None:
    proc = agentkit(pkg, "inspect", "inspect_target.results:CLEAN", "--pickler", "pickle")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[2:] == [
        "sanitize: clean (nothing changed)",
        "",
        f"pickle: ok ({len(pickle.dumps({'rows': [{'id': 1, 'name': 'a'}]}, protocol=5))} bytes)",
    ]


def test_inspect_dotted_attribute_and_call(pkg: Path) -> None:
    proc = agentkit(pkg, "inspect", "inspect_target.results:Box.value", "--pickler", "pickle")
    assert "$.nested.lock" not in proc.stdout  # shown as a tree, not as raw paths
    assert "    └── .lock  replaced  _thread.lock" in proc.stdout
    proc = agentkit(pkg, "inspect", "inspect_target.results:make", "--call")
    assert "└── .made  replaced  _thread.lock" in proc.stdout


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon", "expected MODULE:ATTR"),
        ("no_such_module_xyz:A", "cannot import 'no_such_module_xyz'"),
        ("inspect_target.results:MISSING", "no attribute 'MISSING'"),
    ],
)
def test_inspect_errors_are_one_line_exit_2(pkg: Path, target: str, message: str) -> None:
    proc = agentkit(pkg, "inspect", target)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "ConfigurationError" in lines[0]


def test_main_without_a_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "inspect" in capsys.readouterr().err


def test_render_tree_quoted_keys() -> None:
    lines = render_tree([('$.a["x y"][2]', "one"), ("$.a.b", "two"), ("$", "root")])
    assert lines == [
        "$  root",
        "└── .a",
        '    ├── ["x y"]',
        "    │   └── [2]  one",
        "    └── .b  two",
    ]


def test_inspect_call_that_raises_is_one_line_exit_2(pkg: Path) -> None:
    proc = agentkit(pkg, "inspect", "inspect_target.results:boom", "--call")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (
        "agentkit: error: calling 'inspect_target.results:boom' raised RuntimeError: "
        "no value today (ConfigurationError)"
    )
