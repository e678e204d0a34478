"""docs/agents.md: every python block, in order, runs as one script and does what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "agents.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def test_doc_has_the_expected_examples():
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 4
    joined = "\n".join(blocks)
    for needle in ("class Triage(SubAgent)", "depends_on", "def clean_result", "Supervisor("):
        assert needle in joined, needle


def test_doc_code_runs(tmp_path):
    script = tmp_path / "agents_doc.py"
    script.write_text("\n\n".join(python_blocks(DOC.read_text())))
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "{'answer': '2 open invoices, 200.00 due', 'total': 200.0}" in proc.stdout
    assert "2 live objects replaced" in proc.stdout
