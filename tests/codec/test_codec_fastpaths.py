"""The codec's fast paths give what its general paths give: seeded metadata pickles, the
bytes parser, and re-tagging blobs the codec sealed itself."""

from __future__ import annotations

import hmac
import os
import pickle
import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from agentkit.codec import Codec, pickle_layer
from agentkit.codec._fastpaths import HmacSha256, dump_plain, parse, plain_meta
from agentkit.envelope import parse_header
from agentkit.errors import CodecError, CorruptError, EncodeError, TamperedError
from agentkit.result import SerializableAgentResult
from agentkit.status import AgentStatus

KEY = b"fast-path-test-key-0123456789abc"
T0 = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)


def _result(**overrides: object) -> SerializableAgentResult:
    kwargs: dict[str, object] = {
        "agent": "a",
        "user_id": "u",
        "run_id": "r",
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=2),
    }
    kwargs.update(overrides)
    return SerializableAgentResult.from_raw({"rows": [1, 2.5, "x"]}, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "started",
    [T0, T0.replace(tzinfo=None), None, T0.astimezone(timezone(timedelta(hours=2)))],
)
def test_seeded_metadata_pickle_loads_as_the_clean_pickle(started: datetime | None) -> None:
    result = _result(started_at=started, finished_at=started, session_id="s")
    meta = result._codec_meta()
    out = pickle.dumps(result.output, pickle_layer.PROTOCOL)
    clean = pickle_layer.loads(pickle_layer.dumps((1, meta, out)))
    if plain_meta(meta):
        fast = pickle_layer.loads(dump_plain((1, meta, out)))
        assert fast == clean
        assert [type(v) for v in fast[1].values()] == [type(v) for v in clean[1].values()]
        assert [getattr(v, "tzinfo", None) for v in fast[1].values()] == [
            getattr(v, "tzinfo", None) for v in clean[1].values()
        ]
    else:  # another offset: the clean pickler's path
        assert started is not None and started.tzinfo is not UTC


def test_only_plain_metadata_takes_the_seeded_pickler() -> None:
    assert plain_meta(_result()._codec_meta())
    assert not plain_meta(_result(started_at=T0.astimezone(ZoneInfo("Europe/Paris")))._codec_meta())
    failed = SerializableAgentResult.from_raw(ValueError("x"), agent="a", user_id="u", run_id="r")
    assert not plain_meta(failed._codec_meta())


@pytest.mark.parametrize("signed", [True, False])
def test_results_round_trip_through_the_seeded_pickler(signed: bool) -> None:
    codec = Codec(signing_keys=[("k1", KEY)]) if signed else Codec(layers=("json", "str"))
    for result in (
        _result(),
        _result(status=AgentStatus.FAILED, session_id="s-1", attempt=3),
        _result(started_at=T0.astimezone(ZoneInfo("Europe/Paris"))),
        SerializableAgentResult.from_raw(KeyError("k"), agent="a", user_id="u", run_id="r"),
    ):
        blob = codec.encode_result(result, context=b"ctx")
        back = codec.decode_result(blob, context=b"ctx")
        assert back == result
        assert back.started_at is None or back.started_at.tzinfo == result.started_at.tzinfo  # type: ignore[union-attr]


def test_rebinding_equals_encoding_under_the_new_context() -> None:
    codec = Codec(signing_keys=[("k1", KEY)])
    result = _result()
    sealed = codec.encode_result(result, context=b"store:r:a")
    rebound = codec.rebind(sealed, b"store:r:a", b"cache:r:a")
    assert rebound == codec.encode_result(result, context=b"cache:r:a")
    assert codec.decode_result(rebound, context=b"cache:r:a") == result


def test_a_blob_is_verified_under_its_source_context_before_rebinding() -> None:
    codec = Codec(signing_keys=[("k1", KEY)])
    sealed = codec.encode_result(_result(), context=b"store:r:a")
    with pytest.raises(TamperedError):
        codec.rebind(sealed, b"store:r:OTHER", b"cache:r:a")
    unsigned = Codec(layers=("json",))
    sealed = unsigned.encode_result(_result(), context=b"store:r:a")
    with pytest.raises(CorruptError):
        unsigned.rebind(sealed, b"store:r:OTHER", b"cache:r:a")


def test_a_blob_sealed_by_another_codec_is_verified() -> None:
    mine = Codec(signing_keys=[("k1", KEY)])
    theirs = Codec(signing_keys=[("k1", b"another-key-0123456789abcdef0000")])
    blob = theirs.encode_result(_result(), context=b"a")
    with pytest.raises(TamperedError):
        mine.rebind(blob, b"a", b"b")


def _fields(blob: bytes) -> tuple[object, ...]:
    h = parse_header(blob)
    return (h.layer, int(h.flags), h.key_id, h.header_size, h.payload_size)


def test_the_bytes_parser_agrees_with_parse_header() -> None:
    rng = random.Random(7)
    codecs = [Codec(signing_keys=[("k1", KEY)]), Codec(layers=("json", "str"))]
    blobs = [c.encode_result(_result(), context=b"x") for c in codecs]
    blobs += [c.encode({"v": 1}) for c in codecs]
    for blob in list(blobs):
        for _ in range(300):
            mutated = bytearray(blob)
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(min(len(mutated), 24))
                mutated[i] = rng.randrange(256)
            if rng.random() < 0.2:
                mutated = mutated[: rng.randrange(len(mutated))]
            blobs.append(bytes(mutated))
    for blob in blobs:
        try:
            expected = _fields(blob)
        except CodecError:
            with pytest.raises(CodecError):
                parse(blob)
            continue
        data, *fields = parse(blob)
        assert data == blob and tuple(fields) == expected
        assert tuple(parse(bytearray(blob))[1:]) == expected
        assert tuple(parse(memoryview(blob))[1:]) == expected


@pytest.mark.parametrize("key_len", [16, 32, 63, 64, 65, 200])
def test_the_keyed_hmac_equals_hmac_digest(key_len: int) -> None:
    key = os.urandom(key_len)
    mac = HmacSha256(key)
    for size in (0, 1, 55, 64, 600, 10_000):
        msg = os.urandom(size)
        assert mac.digest(msg) == hmac.digest(key, msg, "sha256")
        assert mac.digest(msg) == mac.digest(msg)  # the keyed states are not consumed


def test_metadata_with_a_str_subclass_is_refused_not_pickled_by_name() -> None:
    class Name(str):
        pass

    codec = Codec(signing_keys=[("k1", KEY)])
    result, _ = SerializableAgentResult._clean_raw(
        {"x": 1},
        {
            "agent": "a",
            "agent_version": "1",
            "user_id": Name("u"),
            "run_id": "r",
            "session_id": None,
            "started_at": T0,
            "finished_at": T0,
            "attempt": 1,
        },
    )
    assert not plain_meta(result._codec_meta())
    with pytest.raises(EncodeError):  # the clean pickler's verdict, not a blob naming Name
        codec.encode_result(result, context=b"c")
