"""SerializableAgentResult: the clean-result hook, structured errors, rehydration, and the
result's own metadata through every codec layer."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel, ValidationError

from agentkit.codec import Codec, CorruptError
from agentkit.envelope import EnvelopeFlags, require_result_envelope
from agentkit.report import ReportKind
from agentkit.result import ErrorInfo, SerializableAgentResult
from agentkit.sanitizer import ObjectSanitizer
from agentkit.status import AgentStatus
from agentkit.store.records import ResultRecord

KEY = b"result-key-" * 3
IDS: dict[str, Any] = {"agent": "recommend", "agent_version": "2", "user_id": "u1", "run_id": "r1"}
T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


class Recommendation(BaseModel):
    id: UUID
    title: str
    saving: Decimal
    at: datetime


@dataclass
class Point:
    x: int
    y: float


class Box:
    """An unknown (non-dataclass, non-model) picklable class."""

    def __init__(self, v: int) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Box) and other.v == self.v

    __hash__ = None  # type: ignore[assignment]


def sample_output() -> dict[str, Any]:
    return {
        "recommendations": [
            {"id": uuid4(), "title": f"t{i}", "saving": Decimal("1.50"), "at": T0} for i in range(3)
        ],
        "total": 4.5,
    }


def full_result(**over: Any) -> SerializableAgentResult:
    data: dict[str, Any] = {
        **IDS,
        "session_id": "s1",
        "status": AgentStatus.SUCCEEDED,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=2),
        "duration_s": 2.0,
        "attempt": 2,
        "output": sample_output(),
    }
    data.update(over)
    return SerializableAgentResult(**data)


# --- from_raw and the hook ------------------------------------------------------------------


def test_from_raw_cleans_live_objects_and_reports_them() -> None:
    lock = threading.Lock()
    raw = {"answer": 42, "lock": lock, "nested": [{"fn": lambda: 1}]}
    res = SerializableAgentResult.from_raw(
        raw, **IDS, started_at=T0, finished_at=T0 + timedelta(seconds=1.5)
    )
    assert res.status is AgentStatus.SUCCEEDED and res.ok and res.error is None
    assert res.output["answer"] == 42
    assert res.output["lock"] is not lock and isinstance(res.output["lock"], dict)
    assert res.duration_s == 1.5
    assert res.report.lossy
    paths = {e.path for e in res.report.entries}
    assert {"$.lock", "$.nested[0].fn"} <= paths
    assert Codec().decode_result(Codec().encode_result(res)).output == res.output


def test_hook_output_is_always_sanitized() -> None:
    class Leaky(SerializableAgentResult):
        @classmethod
        def clean_result(cls, raw: Any, sanitizer: ObjectSanitizer) -> Any:
            return {"kept": raw["value"], "oops": threading.Lock(), "mod": json}

    res = Leaky.from_raw({"value": 1}, **IDS)
    assert type(res) is Leaky
    assert res.output["kept"] == 1
    assert isinstance(res.output["oops"], dict) and isinstance(res.output["mod"], dict)
    assert {e.kind for e in res.report.entries} == {ReportKind.REPLACED}
    codec = Codec([("k", KEY)])
    back = codec.decode_result(codec.encode_result(res), result_type=Leaky)
    assert type(back) is Leaky and back.output == res.output


def test_hook_that_raises_gives_failed_result_not_exception() -> None:
    class Broken(SerializableAgentResult):
        @classmethod
        def clean_result(cls, raw: Any, sanitizer: ObjectSanitizer) -> Any:
            try:
                raw["missing"]
            except KeyError as exc:
                raise RuntimeError("shaping failed") from exc

    res = Broken.from_raw({}, **IDS)
    assert res.status is AgentStatus.FAILED and res.output is None
    assert res.error is not None
    assert res.error.type == "builtins.RuntimeError"
    assert res.error.message == "shaping failed"
    assert res.error.note is not None and res.error.note.endswith("Broken.clean_result raised")
    assert [e.type for e in res.error.chain] == ["builtins.RuntimeError", "builtins.KeyError"]
    assert "raise RuntimeError" in res.error.traceback


def test_exception_as_raw_gives_failed_result_with_cause_chain() -> None:
    try:
        try:
            _ = 1 / 0
        except ZeroDivisionError:
            raise ValueError("bad input") from None
    except ValueError as exc:
        suppressed = exc
    try:
        try:
            _ = 1 / 0
        except ZeroDivisionError:
            raise ValueError("implicit context")  # noqa: B904 - the implicit chain is the point
    except ValueError as exc:
        implicit = exc

    res = SerializableAgentResult.from_raw(suppressed, **IDS)
    assert res.status is AgentStatus.FAILED
    assert res.error is not None and res.error.cause is None
    assert res.error.type == "builtins.ValueError" and "1 / 0" not in res.error.traceback
    res2 = SerializableAgentResult.from_raw(implicit, **IDS, status=AgentStatus.TIMED_OUT)
    assert res2.status is AgentStatus.TIMED_OUT
    assert res2.error is not None and res2.error.cause is not None
    assert res2.error.cause.type == "builtins.ZeroDivisionError"


def test_error_info_survives_hostile_and_cyclic_exceptions() -> None:
    class Hostile(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    info = ErrorInfo.from_exception(a)
    assert [e.message for e in info.chain] == ["a", "b"]
    hostile = ErrorInfo.from_exception(Hostile())
    assert hostile.message.startswith("<unprintable")


def test_from_error_builds_non_success_results() -> None:
    res = SerializableAgentResult.from_error(
        TimeoutError("slow"), status=AgentStatus.TIMED_OUT, **IDS, attempt=3
    )
    assert res.status is AgentStatus.TIMED_OUT and res.attempt == 3
    assert res.error is not None and res.error.type == "builtins.TimeoutError"
    info = ErrorInfo(type="upstream", message="triage failed")
    skipped = SerializableAgentResult.from_error(info, status=AgentStatus.SKIPPED, **IDS)
    assert skipped.error == info
    with pytest.raises(ValueError, match="non-success"):
        SerializableAgentResult.from_error(info, status=AgentStatus.SUCCEEDED, **IDS)


def test_from_raw_rejects_bad_ids_as_caller_bugs() -> None:
    with pytest.raises(TypeError, match="user_id"):
        SerializableAgentResult.from_raw(1, **{**IDS, "user_id": ""})
    with pytest.raises(TypeError, match="started_at"):
        SerializableAgentResult.from_raw(1, **IDS, started_at="yesterday")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="attempt"):
        SerializableAgentResult.from_raw(1, **IDS, attempt=0)


def test_result_is_immutable() -> None:
    res = full_result()
    with pytest.raises(ValidationError):
        res.status = AgentStatus.FAILED  # type: ignore[misc]


# --- reading the output ---------------------------------------------------------------------


def test_output_as_rehydrates_into_the_readers_types() -> None:
    res = full_result()
    recs = SerializableAgentResult(**IDS, output=res.output["recommendations"]).output_as(
        list[Recommendation]
    )
    assert all(isinstance(r, Recommendation) for r in recs)
    assert recs[0].saving == Decimal("1.50")

    class Report(BaseModel):
        recommendations: list[Recommendation]
        total: float

    assert res.output_as(Report).total == 4.5
    point = SerializableAgentResult(**IDS, output={"x": 1, "y": 2.5}).output_as(Point)
    assert point == Point(1, 2.5)
    with pytest.raises(ValidationError):
        SerializableAgentResult(**IDS, output={"x": "nope"}).output_as(Point)


def test_output_as_never_imports_type_names_from_the_payload() -> None:
    payload = {"__class__": "os.system", "type": "subprocess.Popen", "x": 1, "y": 2.0}
    res = SerializableAgentResult(**IDS, output=payload)
    assert res.output_as(Point) == Point(1, 2.0)
    assert res.output_as(dict[str, Any]) == payload


def test_output_json_is_standard_json_for_store_columns() -> None:
    out = {
        "id": UUID(int=1),
        "at": T0,
        "nan": math.nan,
        "inf": -math.inf,
        "b": b"\x00\x01",
        "t": (1, 2),
        "s": {3},
        1: "int key",
        "nul": "a\x00b",
        "sur": "\ud800",
    }
    text = SerializableAgentResult(**IDS, output=out).output_json()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard {c}"))
    assert data["id"] == str(UUID(int=1)) and data["at"] == T0.isoformat()
    assert data["nan"] is None and data["inf"] is None
    assert data["t"] == [1, 2] and data["s"] == [3] and data["1"] == "int key"
    assert "\x00" not in text and "\\u0000" not in text
    text.encode("utf-8")
    assert json.loads(full_result().output_json())["total"] == 4.5


def test_result_record_accepts_encoded_result() -> None:
    res = full_result()
    blob = Codec([("k", KEY)]).encode_result(res, context=b"store:r1:recommend")
    assert require_result_envelope(blob).flags & EnvelopeFlags.RESULT
    record = ResultRecord.from_result(res, blob)
    assert json.loads(record.output_json)["total"] == 4.5


# --- metadata through every layer -----------------------------------------------------------


@pytest.mark.parametrize("layer", ["pickle", "json", "str"])
def test_metadata_round_trips_through_every_layer(layer: str) -> None:
    res = SerializableAgentResult.from_raw(
        {**sample_output(), "lock": threading.Lock()},
        **IDS,
        session_id="s9",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3),
        attempt=2,
    )
    failed = SerializableAgentResult.from_error(
        ValueError("x"), status=AgentStatus.FAILED, **IDS, started_at=T0
    )
    codec = Codec([("k", KEY)], layers=(layer,))
    for original in (res, failed):
        blob = codec.encode_result(original, context=b"ctx")
        info = codec.inspect(blob)
        assert info.layer == layer and info.is_result and info.lossy == (layer == "str")
        back = codec.decode_result(blob, context=b"ctx")
        assert back.model_dump(exclude={"output"}) == original.model_dump(exclude={"output"})
        if layer == "str":
            # documented: the output comes back as its text form
            assert isinstance(back.output, str)
            assert (back.output == "None") == (original.output is None)
        else:
            assert back.output == original.output
        assert codec.decode(blob, context=b"ctx") == back


def test_pickle_layer_reuses_the_sanitizers_bytes() -> None:
    res = SerializableAgentResult.from_raw(sample_output(), **IDS)
    pickled = res._output_pickle_bytes()
    assert pickled is not None
    blob = Codec([("k", KEY)]).encode_result(res)
    assert pickled in blob
    # a copy with another output must not reuse the stale bytes
    other = res.model_copy(update={"output": {"different": True}})
    assert other._output_pickle_bytes() is None
    back = Codec([("k", KEY)]).decode_result(Codec([("k", KEY)]).encode_result(other))
    assert back.output == {"different": True}


def test_decode_result_refuses_plain_values_and_vice_versa() -> None:
    codec = Codec([("k", KEY)])
    with pytest.raises(CorruptError, match="not an agent result"):
        codec.decode_result(codec.encode({"a": 1}))
    assert codec.encode(full_result()) != b""  # encode() of a result delegates
    assert codec.inspect(codec.encode(full_result())).is_result


def test_error_text_has_url_credentials_redacted() -> None:
    try:
        raise ConnectionError("cannot reach redis://app:hunter2@cache:6379/0")
    except ConnectionError as exc:
        res = SerializableAgentResult.from_raw(exc, **IDS)
    assert res.error is not None
    assert "hunter2" not in res.error.message and "hunter2" not in res.error.traceback
    assert "redis://app:***@cache" in res.error.message


def test_pickling_a_result_does_not_carry_the_output_twice() -> None:
    import pickle

    res = SerializableAgentResult.from_raw(sample_output(), **IDS)
    assert res._output_pickle_bytes() is not None
    back = pickle.loads(pickle.dumps(res))
    assert back == res and back._output_pickle_bytes() is None
    assert res._output_pickle_bytes() is not None


def test_keep_picklable_outputs_need_a_full_pickle_codec() -> None:
    keep = ObjectSanitizer(keep_picklable=True)
    res = SerializableAgentResult.from_raw({"p": Box(1)}, **IDS, sanitizer=keep)
    assert res.output == {"p": Box(1)}
    assert res._output_pickle_bytes() is None
    # a restricted codec cannot pickle the dataclass: it falls back to the lossy str layer
    restricted = Codec([("k", KEY)])
    blob = restricted.encode_result(res)
    assert restricted.inspect(blob).layer == "str"
    # a full-pickle codec keeps it, and reads it back
    full = Codec([("k", KEY)], full_pickle=True)
    blob = full.encode_result(res)
    assert full.inspect(blob).layer == "pickle"
    assert full.decode_result(blob).output == {"p": Box(1)}
    # and a restricted reader refuses to load it, even with the right key
    with pytest.raises(CorruptError, match="clean value domain"):
        restricted.decode_result(blob)


def test_from_raw_builds_the_same_model_as_validation() -> None:
    res = SerializableAgentResult.from_raw(
        {"a": 1}, **IDS, session_id="s", started_at=T0, finished_at=T0 + timedelta(seconds=1)
    )
    validated = SerializableAgentResult.model_validate(res.model_dump())
    assert res == validated
    assert list(res.__dict__) == list(SerializableAgentResult.model_fields)
    assert res.model_fields_set == set(SerializableAgentResult.model_fields)
    assert res.model_copy(update={"attempt": 2}).attempt == 2

    class WithExtra(SerializableAgentResult):
        tenant: str = "acme"

    extra = WithExtra.from_raw({"a": 1}, **IDS)
    assert extra.tenant == "acme" and extra.output == {"a": 1}
    codec = Codec([("k", KEY)])
    for layers in (("pickle",), ("json",)):
        c = Codec([("k", KEY)], layers=layers)
        back = c.decode_result(c.encode_result(extra), result_type=WithExtra)
        assert back == extra
    assert codec.decode_result(codec.encode_result(extra)).output == {"a": 1}


def test_error_info_never_runs_a_hostile_getattribute() -> None:
    touched: list[str] = []

    class Sneaky(Exception):
        def __getattribute__(self, name: str) -> Any:
            touched.append(name)
            raise RuntimeError("gotcha")

    try:
        raise Sneaky("x") from KeyError("k")
    except Sneaky as exc:
        res = SerializableAgentResult.from_raw(exc, **IDS)
    assert res.status is AgentStatus.FAILED and res.error is not None
    assert [e.type for e in res.error.chain][1] == "builtins.KeyError"
    assert res.error.type.endswith("Sneaky")


def test_decode_result_checks_result_type() -> None:
    codec = Codec([("k", KEY)])
    with pytest.raises(TypeError, match="result_type"):
        codec.decode_result(codec.encode_result(full_result()), result_type=dict)  # type: ignore[type-var]
