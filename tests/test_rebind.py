"""The cache blob is the store blob re-tagged for the cache key: same bytes as encoding twice."""

from __future__ import annotations

import pytest

from agentkit._rebind import Rebinder, checked_rebinder
from agentkit.codec import Codec
from agentkit.errors import CodecError, TamperedError
from agentkit.result import SerializableAgentResult

KEY = b"rebind-test-key-0123456789abcdef"


def _result() -> SerializableAgentResult:
    return SerializableAgentResult.from_raw(
        {"rows": [1, 2.5, "x"], "nested": {"k": None}}, agent="a", user_id="u", run_id="r"
    )


@pytest.mark.parametrize("signed", [True, False])
def test_rebound_blob_equals_a_fresh_encoding_and_moves_the_binding(signed: bool) -> None:
    codec = Codec(signing_keys=[("k1", KEY)]) if signed else Codec(layers=("json", "str"))
    rebinder = checked_rebinder(codec, KEY if signed else None)
    assert rebinder is not None
    result = _result()
    store_blob = codec.encode_result(result, context=b"store:r:a")
    cache_blob = rebinder.rebind(store_blob, b"agentkit:u:hash:r:a")
    assert cache_blob == codec.encode_result(result, context=b"agentkit:u:hash:r:a")
    assert codec.decode_result(cache_blob, context=b"agentkit:u:hash:r:a").output == result.output
    with pytest.raises(CodecError):  # TamperedError signed, CorruptError unsigned
        codec.decode_result(cache_blob, context=b"store:r:a")


def test_no_rebinder_when_the_key_does_not_match_the_codec() -> None:
    codec = Codec(signing_keys=[("k1", KEY)])
    assert checked_rebinder(codec, b"another-key-0123456789abcdef0000") is None
    assert checked_rebinder(codec, None) is None
    assert checked_rebinder(Codec(layers=("json",)), KEY) is None


def test_a_wrong_key_rebinder_makes_blobs_that_do_not_verify() -> None:
    codec = Codec(signing_keys=[("k1", KEY)])
    blob = codec.encode_result(_result(), context=b"a")
    forged = Rebinder(b"attacker-key-0123456789abcdef000").rebind(blob, b"b")
    with pytest.raises(TamperedError):
        codec.decode_result(forged, context=b"b")
