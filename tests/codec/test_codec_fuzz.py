"""10,000 random bit flips, truncations and splices: all rejected with typed errors."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from uuid import UUID

import pytest

from agentkit.codec import (
    Codec,
    CorruptError,
    LayerNotAcceptedError,
    TamperedError,
    UnknownLayerError,
    UnsignedError,
)
from agentkit.result import SerializableAgentResult

KEY = b"fuzz-key-" * 4
TYPED = (CorruptError, TamperedError, UnsignedError, UnknownLayerError, LayerNotAcceptedError)
VALUE = {
    "ids": [UUID(int=i) for i in range(3)],
    "at": datetime(2024, 5, 1, tzinfo=UTC),
    "score": 0.5,
    "tags": ("a", "b"),
}


def valid_blobs() -> list[tuple[Codec, bytes]]:
    result = SerializableAgentResult(agent="a", user_id="u", run_id="r", output=VALUE)
    out: list[tuple[Codec, bytes]] = []
    for keys in (None, [("k1", KEY)]):
        for layers in (("pickle",), ("json",), ("str",)):
            if keys is None and layers == ("pickle",):
                continue
            codec = Codec(keys, layers=layers)
            out.append((codec, codec.encode(VALUE, context=b"ctx")))
            out.append((codec, codec.encode_result(result, context=b"ctx")))
    return out


def mutate(rng: random.Random, blob: bytes, other: bytes) -> bytes:
    data = bytearray(blob)
    kind = rng.randrange(6)
    if kind == 0:  # flip 1-3 bits
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        return bytes(data)
    if kind == 1:  # truncate
        return bytes(data[: rng.randrange(len(data))])
    if kind == 2:  # splice: a prefix of one blob with a suffix of another
        cut = rng.randrange(1, len(data))
        cut2 = rng.randrange(len(other))
        spliced = bytes(data[:cut]) + other[cut2:]
        return spliced if spliced != blob else spliced + b"\x00"
    if kind == 3:  # overwrite a run of bytes with random ones
        i = rng.randrange(len(data))
        n = rng.randint(1, 8)
        new = bytes(rng.randrange(256) for _ in range(n))
        mutated = bytes(data[:i]) + new + bytes(data[i + n :])
        return mutated if mutated != blob else mutated + b"\x00"
    if kind == 4:  # insert or delete one byte
        i = rng.randrange(len(data))
        if rng.random() < 0.5:
            del data[i]
        else:
            data.insert(i, rng.randrange(256))
        return bytes(data)
    return bytes(data) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))


def test_ten_thousand_mutations_are_all_rejected_with_typed_errors() -> None:
    rng = random.Random(20260101)
    blobs = valid_blobs()
    reader_for = {id(c): c for c, _ in blobs}
    lenient = Codec([("k1", KEY)], allow_unsigned=True)
    counts: dict[str, int] = {}
    start = time.perf_counter()
    for n in range(10_000):
        codec, blob = blobs[n % len(blobs)]
        _, other = blobs[rng.randrange(len(blobs))]
        bad = mutate(rng, blob, other)
        assert bad != blob
        for reader in (reader_for[id(codec)], lenient):
            with pytest.raises(TYPED) as err:
                reader.decode(bad, context=b"ctx")
            counts[type(err.value).__name__] = counts.get(type(err.value).__name__, 0) + 1
    elapsed = time.perf_counter() - start
    assert counts.get("CorruptError", 0) > 1000 and counts.get("TamperedError", 0) > 1000
    assert elapsed < 20, f"fuzzing took {elapsed:.1f}s"


def test_unmutated_blobs_decode() -> None:
    lenient = Codec([("k1", KEY)], allow_unsigned=True)
    for _, blob in valid_blobs():
        lenient.decode(blob, context=b"ctx")
