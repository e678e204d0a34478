"""The fast backend check accepts exactly what require_result_envelope accepts."""

from __future__ import annotations

import random

import pytest

from agentkit._envelope_check import check_result_envelope
from agentkit.envelope import EnvelopeFlags, LayerTag, encode_header, require_result_envelope
from agentkit.errors import InvalidPayloadError


def env(payload: bytes, flags: EnvelopeFlags, key_id: str = "") -> bytes:
    return encode_header(LayerTag.JSON, flags, key_id, len(payload)) + payload + b"\x07" * 32


SEEDS = [
    env(b'{"x": 1}', EnvelopeFlags.RESULT),
    env(b"abc", EnvelopeFlags.RESULT | EnvelopeFlags.SIGNED, "k1"),
    env(b"", EnvelopeFlags.RESULT | EnvelopeFlags.LOSSY),
    env(b"not a result", EnvelopeFlags.NONE),
]


def accepted(check: object, blob: object) -> bool:
    try:
        check(blob)  # type: ignore[operator]
    except InvalidPayloadError:
        return False
    return True


def test_agrees_with_require_result_envelope_on_mutations() -> None:
    rng = random.Random(20261204)
    seen = {True: 0, False: 0}
    for _ in range(30_000):
        blob = bytearray(rng.choice(SEEDS))
        for _ in range(rng.randint(0, 3)):
            op = rng.random()
            if op < 0.5 and blob:
                blob[rng.randrange(len(blob))] = rng.randrange(256)
            elif op < 0.75 and blob:
                del blob[rng.randrange(len(blob))]
            else:
                blob.insert(rng.randrange(len(blob) + 1), rng.randrange(256))
        data = bytes(blob)
        verdict = accepted(require_result_envelope, data)
        assert accepted(check_result_envelope, data) is verdict, data
        seen[verdict] += 1
    assert seen[True] > 1000 and seen[False] > 1000


@pytest.mark.parametrize("bad", [None, "text", bytearray(SEEDS[0]), memoryview(SEEDS[0]), 42])
def test_non_bytes_are_refused(bad: object) -> None:
    with pytest.raises(InvalidPayloadError):
        check_result_envelope(bad)
