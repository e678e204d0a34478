"""README.md: the code example runs and prints what the README says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_prints_what_it_claims(tmp_path: Path) -> None:
    text = README.read_text()
    code = re.search(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    shown = re.search(r"^prints\n\n```text\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    assert code and shown, "README lost its example or its printed output"
    script = tmp_path / "readme_example.py"
    script.write_text(code.group(1))
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == shown.group(1)


def test_quick_start_has_exactly_the_two_commands() -> None:
    quick = README.read_text().split("## Quick start", 1)[1].split("##", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick, flags=re.DOTALL)
    assert block
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci
