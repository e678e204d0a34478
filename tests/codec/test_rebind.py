"""Codec.rebind: the cache blob is the store blob re-tagged, byte-equal to encoding twice."""

from __future__ import annotations

import pytest

from agentkit.codec import Codec
from agentkit.errors import CodecError, CorruptError, TamperedError
from agentkit.result import SerializableAgentResult

KEY = b"rebind-test-key-0123456789abcdef"


def _result() -> SerializableAgentResult:
    return SerializableAgentResult.from_raw(
        {"rows": [1, 2.5, "x"], "nested": {"k": None}}, agent="a", user_id="u", run_id="r"
    )


@pytest.mark.parametrize("signed", [True, False])
def test_rebound_blob_equals_a_fresh_encoding_and_moves_the_binding(signed: bool) -> None:
    codec = Codec(signing_keys=[("k1", KEY)]) if signed else Codec(layers=("json", "str"))
    result = _result()
    store_blob = codec.encode_result(result, context=b"store:r:a")
    cache_blob = codec.rebind(store_blob, b"store:r:a", b"agentkit:u:hash:r:a")
    assert cache_blob == codec.encode_result(result, context=b"agentkit:u:hash:r:a")
    assert codec.decode_result(cache_blob, context=b"agentkit:u:hash:r:a").output == result.output
    with pytest.raises(CodecError):  # TamperedError signed, CorruptError unsigned
        codec.decode_result(cache_blob, context=b"store:r:a")


def test_rebind_keeps_the_signing_key_of_the_blob_after_rotation() -> None:
    old = Codec(signing_keys=[("k1", KEY)])
    rotated = Codec(signing_keys=[("k1", KEY), ("k2", b"second-key-0123456789abcdef00000")])
    blob = old.encode_result(_result(), context=b"a")
    moved = rotated.rebind(blob, b"a", b"b")
    assert rotated.inspect(moved).key_id == "k1"
    assert old.decode_result(moved, context=b"b").output == _result().output


def test_rebind_refuses_what_does_not_verify_under_the_source_context() -> None:
    codec = Codec(signing_keys=[("k1", KEY)])
    blob = codec.encode_result(_result(), context=b"a")
    with pytest.raises(TamperedError):  # never a signing oracle for foreign bytes
        codec.rebind(blob, b"not-a", b"b")
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 1
    with pytest.raises(TamperedError):
        codec.rebind(bytes(flipped), b"a", b"b")
    forged = Codec(signing_keys=[("k1", b"attacker-key-0123456789abcdef000")])
    with pytest.raises(TamperedError):
        codec.rebind(forged.encode_result(_result(), context=b"a"), b"a", b"b")
    unsigned = Codec(layers=("json",))
    with pytest.raises(CorruptError):
        unsigned.rebind(unsigned.encode_result(_result(), context=b"a"), b"x", b"b")
