"""The python examples in docs/results.md run, top to bottom, in one namespace."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_docs_have_examples_for_hook_codec_and_security() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 4
    text = "".join(blocks)
    for needle in ("clean_result", "encode_result", "TamperedError", "output_as"):
        assert needle in text


def test_results_doc_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # a real module, so pydantic can resolve the example models' annotations
    module = types.ModuleType("results_doc")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for i, block in enumerate(python_blocks()):
        exec(compile(block, f"{DOC.name}[block {i}]", "exec"), module.__dict__)
