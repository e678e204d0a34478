"""Acceptance 2, JSON-layer half: the sanitized output of every hostile case encodes through
the JSON layer (and the default pickle layer) and decodes equal."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from codec_strategies import same

from agentkit.codec import Codec
from agentkit.result import SerializableAgentResult
from agentkit.sanitizer import ObjectSanitizer

HOSTILE = Path(__file__).resolve().parents[1] / "sanitizer" / "hostile.py"
KEY = b"hostile-json-key" * 2


def _load_hostile() -> ModuleType:
    name = "agentkit_hostile_cases"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HOSTILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


hostile = _load_hostile()
CASES: list[Any] = list(hostile.CASES)
JSON_CODECS = [Codec(layers=("json",)), Codec([("k", KEY)], layers=("json",))]
PICKLE_CODEC = Codec([("k", KEY)], layers=("pickle",))


def test_the_suite_is_there() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sanitized_hostile_value_round_trips_through_json_and_pickle(case: Any) -> None:
    with contextlib.ExitStack() as stack:
        value = {"result": {"items": ["before", case.factory(stack), "after"]}}
        clean, report = ObjectSanitizer().sanitize(value)
        result = SerializableAgentResult.from_raw(value, agent="h", user_id="u", run_id="r")
    assert report.total >= 1 or case.paths == ()
    for codec in JSON_CODECS:
        blob = codec.encode(clean, context=b"hostile")
        assert codec.inspect(blob).layer == "json"
        assert same(codec.decode(blob, context=b"hostile"), clean)
        rblob = codec.encode_result(result, context=b"hostile")
        assert codec.inspect(rblob).layer == "json"
        assert same(codec.decode_result(rblob, context=b"hostile").output, result.output)
    blob = PICKLE_CODEC.encode_result(result, context=b"hostile")
    assert PICKLE_CODEC.inspect(blob).layer == "pickle"
    assert same(PICKLE_CODEC.decode_result(blob, context=b"hostile").output, result.output)
