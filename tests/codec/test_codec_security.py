"""Forged pickles never run, HMAC and checksum bind bytes to their context, keys rotate,
accept lists hold, and every error is typed."""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import struct
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from agentkit.codec import (
    Codec,
    CorruptError,
    Keyring,
    LayerNotAcceptedError,
    TamperedError,
    UnknownLayerError,
    UnsignedError,
)
from agentkit.envelope import EnvelopeFlags, LayerTag, encode_header
from agentkit.errors import CodecError, ConfigurationError

KEY = b"right-key-" * 4
WRONG = b"wrong-key-" * 4


def forge(
    payload: bytes,
    *,
    key: bytes | None,
    key_id: str = "k1",
    context: bytes = b"",
    layer: int = LayerTag.PICKLE,
    flags: EnvelopeFlags = EnvelopeFlags.NONE,
) -> bytes:
    """Build an envelope by hand, as an attacker who knows the format (and maybe a key) would."""
    if key is None:
        header = encode_header(layer, flags, "", len(payload))
        body = header + struct.pack(">I", len(context)) + context + payload
        tag = hashlib.sha256(b"agentkit/unsigned" + body).digest()
    else:
        header = encode_header(layer, flags | EnvelopeFlags.SIGNED, key_id, len(payload))
        body = header + struct.pack(">I", len(context)) + context + payload
        tag = hmac.digest(key, body, "sha256")
    return header + payload + tag


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "MARKER"
    yield path
    assert not path.exists(), "a forged pickle ran a command"


def evil_pickles(marker: Path) -> list[bytes]:
    cmd = f"touch {marker}"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (cmd,))

    class EvilViaGetattr:
        # getattr(UUID.__init__, "__globals__") reaches the uuid module's `os`
        def __reduce__(self) -> tuple[object, tuple[object, str]]:
            return (getattr, (UUID.__init__, "__globals__"))

    return [pickle.dumps(Evil(), protocol=p) for p in (0, 2, 5)] + [
        pickle.dumps({"ok": [1, 2], "boom": Evil()}, protocol=5),
        pickle.dumps(EvilViaGetattr(), protocol=5),
        nested_result_pickle(marker),
    ]


def nested_result_pickle(marker: Path) -> bytes:
    """A result payload (format, meta, output pickle) whose output pickle is the evil one."""
    cmd = f"touch {marker}"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (cmd,))

    meta = {"agent": "a", "user_id": "u", "run_id": "r"}
    return pickle.dumps((1, meta, pickle.dumps(Evil(), protocol=5)), protocol=5)


def all_readers() -> list[Codec]:
    return [
        Codec(),
        Codec([("k1", KEY)]),
        Codec([("k1", KEY)], allow_unsigned=True),
        Codec([("k1", KEY)], accept=("json", "str")),
        Codec([("other", WRONG)], full_pickle=True),
        Codec([("k1", WRONG)], full_pickle=True, allow_unsigned=True),
    ]


def test_forged_pickle_never_runs_unsigned(marker: Path) -> None:
    for evil in evil_pickles(marker):
        for flags in (EnvelopeFlags.NONE, EnvelopeFlags.RESULT):
            blob = forge(evil, key=None, flags=flags)
            for codec in all_readers():
                with pytest.raises((UnsignedError, LayerNotAcceptedError)):
                    codec.decode(blob)
                with pytest.raises((UnsignedError, LayerNotAcceptedError)):
                    codec.decode_result(blob)


def test_forged_pickle_never_runs_with_wrong_key(marker: Path) -> None:
    for evil in evil_pickles(marker):
        for key_id in ("k1", "other"):
            blob = forge(evil, key=b"attacker-guess-" * 3, key_id=key_id)
            for codec in all_readers():
                with pytest.raises((TamperedError, UnsignedError, LayerNotAcceptedError)):
                    codec.decode(blob)


def test_forged_pickle_never_runs_with_the_right_key(marker: Path) -> None:
    # the key leaked: the restricted unpickler is the second wall
    reader = Codec([("k1", KEY)])
    for evil in evil_pickles(marker)[:-1]:
        for flags in (EnvelopeFlags.NONE, EnvelopeFlags.RESULT):
            blob = forge(evil, key=KEY, key_id="k1", flags=flags)
            with pytest.raises(CorruptError, match="not in the clean value domain"):
                reader.decode(blob)
    nested = forge(nested_result_pickle(marker), key=KEY, key_id="k1", flags=EnvelopeFlags.RESULT)
    with pytest.raises(CorruptError, match="not in the clean value domain"):
        reader.decode_result(nested)
    # as a plain value the inner pickle is just bytes: returned, never loaded
    plain = forge(nested_result_pickle(marker), key=KEY, key_id="k1")
    fmt, _meta, inner = reader.decode(plain)
    assert fmt == 1 and type(inner) is bytes


def test_raw_pickle_bytes_are_not_an_envelope(marker: Path) -> None:
    for evil in evil_pickles(marker):
        for codec in all_readers():
            with pytest.raises(CorruptError):
                codec.decode(evil)


def test_unsigned_codec_never_encodes_pickle_and_refuses_pickle_blobs() -> None:
    codec = Codec(layers=("pickle", "json"))
    assert codec.inspect(codec.encode([1])).layer == "json"
    signed_pickle = Codec([("k1", KEY)]).encode([1])
    with pytest.raises(UnsignedError):
        Codec().decode(signed_pickle)
    with pytest.raises(ConfigurationError, match="no signing key"):
        Codec(layers=("pickle",))


def test_replay_under_another_context_is_rejected() -> None:
    signed = Codec([("k1", KEY)])
    for layers in (("pickle",), ("json",), ("str",)):
        codec = Codec([("k1", KEY)], layers=layers)
        blob = codec.encode({"user": "alice"}, context=b"cache:alice:run1:agent")
        assert signed.decode(blob, context=b"cache:alice:run1:agent") == (
            {"user": "alice"} if layers != ("str",) else "{'user': 'alice'}"
        )
        for other in (b"cache:bob:run1:agent", b"", b"cache:alice:run1:agent\x00"):
            with pytest.raises(TamperedError, match="another context"):
                signed.decode(blob, context=other)
    # unsigned blobs: the checksum covers the context too; documented as CorruptError
    unsigned = Codec()
    blob = unsigned.encode([1], context=b"a")
    with pytest.raises(CorruptError, match="another context"):
        unsigned.decode(blob, context=b"b")


def test_context_length_prefix_prevents_shifting_bytes_between_context_and_payload() -> None:
    codec = Codec([("k1", KEY)], layers=("json",))
    blob = codec.encode("x", context=b"ab")
    with pytest.raises(TamperedError):
        codec.decode(blob, context=b"a")


def test_key_rotation_newest_signs_all_verify() -> None:
    old = Codec([("2024", b"o" * 32)])
    blob_old = old.encode({"v": 1})
    rotated = Codec([("2024", b"o" * 32), ("2025", b"n" * 32)])
    assert rotated.signing_key_id == "2025"
    blob_new = rotated.encode({"v": 2})
    assert rotated.inspect(blob_new).key_id == "2025"
    assert rotated.decode(blob_old) == {"v": 1}
    assert rotated.decode(blob_new) == {"v": 2}
    # the old key retired: its blobs no longer verify
    retired = Codec({"2025": b"n" * 32})
    assert retired.decode(blob_new) == {"v": 2}
    with pytest.raises(TamperedError, match="not in this codec's keyring"):
        retired.decode(blob_old)
    # an old codec cannot read blobs of a key it never had
    with pytest.raises(TamperedError):
        old.decode(blob_new)
    # same id, different key: HMAC fails
    with pytest.raises(TamperedError, match="HMAC"):
        Codec({"2025": b"x" * 32}).decode(blob_new)


def test_signing_codec_refuses_unsigned_blobs_unless_allowed() -> None:
    blob = Codec().encode({"a": 1})
    with pytest.raises(UnsignedError, match="allow_unsigned"):
        Codec([("k1", KEY)]).decode(blob)
    assert Codec([("k1", KEY)], allow_unsigned=True).decode(blob) == {"a": 1}
    # a signed JSON blob cannot be read without the key
    signed = Codec([("k1", KEY)], layers=("json",)).encode({"a": 1})
    with pytest.raises(TamperedError, match="no keys"):
        Codec().decode(signed)


def test_accept_list_limits_layers() -> None:
    writer = Codec([("k1", KEY)])
    json_only = Codec([("k1", KEY)], accept=("json",))
    with pytest.raises(LayerNotAcceptedError, match="pickle"):
        json_only.decode(writer.encode([1]))
    with pytest.raises(LayerNotAcceptedError, match="str"):
        json_only.decode(Codec([("k1", KEY)], layers=("str",)).encode([1]))
    assert json_only.decode(Codec([("k1", KEY)], layers=("json",)).encode([1])) == [1]
    assert json_only.accept == frozenset({"json"})
    with pytest.raises(ConfigurationError, match="unknown codec layer"):
        Codec(accept=("yaml",))
    with pytest.raises(ConfigurationError, match="unknown codec layer"):
        Codec(layers=("json", "marshal"))
    with pytest.raises(ConfigurationError, match="at least one layer"):
        Codec(layers=())


def test_unknown_layer_is_typed() -> None:
    for key in (None, KEY):
        blob = forge(b"payload", key=key, layer=9)
        codec = Codec() if key is None else Codec([("k1", KEY)])
        with pytest.raises(UnknownLayerError):
            codec.decode(blob)
        assert codec.inspect(blob).layer == "unknown(9)"


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        ([("k1", b"short")], "at least 16 bytes"),
        ([("bad id!", b"x" * 16)], "key id"),
        ([("é", b"x" * 16)], "key id"),
        ([("", b"x" * 16)], "key id"),
        ([("k1", b"x" * 16), ("k1", b"y" * 16)], "twice"),
        ([("k1", "a string key is not bytes")], "must be bytes"),
        ("a string", "not str"),
        ([], "at least one"),
        (42, "signing_keys must be"),
    ],
)
def test_bad_keys_are_configuration_errors(keys: object, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Codec(keys)  # type: ignore[arg-type]


def test_single_bytes_key_gets_a_stable_derived_id() -> None:
    a, b = Codec(b"s" * 32), Codec(b"s" * 32)
    assert a.signing_key_id == b.signing_key_id != Codec(b"t" * 32).signing_key_id
    assert b.decode(a.encode([1])) == [1]
    assert "s" * 8 not in repr(Keyring(b"s" * 32))


def test_garbage_is_corrupt_not_a_crash() -> None:
    codec = Codec([("k1", KEY)])
    for blob in (b"", b"AKE", b"\x00" * 100, os.urandom(64), "not bytes", None, 12):
        with pytest.raises(CorruptError):
            codec.decode(blob)  # type: ignore[arg-type]


def test_signed_but_malformed_payloads_are_corrupt() -> None:
    codec = Codec([("k1", KEY)], allow_unsigned=True)
    cases = [
        (LayerTag.JSON, b"{not json"),
        (LayerTag.JSON, b'{"$ak": "nope", "v": 1}'),
        (LayerTag.JSON, b'{"$ak": "dt", "v": 5}'),
        (LayerTag.JSON, b'{"$ak": "map", "v": [[[1], 2]]}'),
        (LayerTag.JSON, b'{"$ak": "b", "v": "@@@"}'),
        (LayerTag.STR, b"\xff\xfe"),
        (LayerTag.PICKLE, b"\x80\x05K\x01.trailing"),
        (LayerTag.PICKLE, b"\x80\x05"),
    ]
    for layer, payload in cases:
        blob = forge(payload, key=KEY, layer=layer)
        with pytest.raises(CorruptError):
            codec.decode(blob)
    # a well-formed value where a result is expected
    blob = forge(b"[1, 2]", key=KEY, layer=LayerTag.JSON, flags=EnvelopeFlags.RESULT)
    with pytest.raises(CorruptError, match="result payload"):
        codec.decode_result(blob)
    plain = Codec([("k1", KEY)]).encode([1])
    with pytest.raises(CorruptError, match="not an agent result"):
        codec.decode_result(plain)


def test_every_error_is_a_codec_error() -> None:
    for cls in (CorruptError, TamperedError, UnsignedError, UnknownLayerError):
        assert issubclass(cls, CodecError)
