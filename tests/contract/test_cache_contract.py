"""The cache contract: every cache backend in the registry must pass all of these."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from contract_records import envelope, result_blob

from agentkit.cache.base import Cache
from agentkit.envelope import EnvelopeFlags
from agentkit.errors import InvalidPayloadError
from agentkit.keys import UserHasher, cache_key

HASHER = UserHasher(b"contract-suite-key-0123456789")


def key(user: str = "alice", *parts: str) -> str:
    return cache_key("akt", HASHER.hash(user), *(parts or (uuid.uuid4().hex,)))


async def test_is_a_cache(cache: Cache) -> None:
    assert isinstance(cache, Cache)


async def test_get_missing_is_none(cache: Cache) -> None:
    assert await cache.get(key()) is None


async def test_set_then_get_returns_the_same_bytes(cache: Cache) -> None:
    k, blob = key(), result_blob({"x": 1})
    await cache.set(k, blob)
    got = await cache.get(k)
    assert got == blob
    assert type(got) is bytes


async def test_overwrite_replaces_value(cache: Cache) -> None:
    k = key()
    await cache.set(k, result_blob("first"))
    await cache.set(k, result_blob("second"))
    assert await cache.get(k) == result_blob("second")


async def test_delete_reports_existence(cache: Cache) -> None:
    k = key()
    await cache.set(k, result_blob(1))
    assert await cache.delete(k) is True
    assert await cache.get(k) is None
    assert await cache.delete(k) is False


async def test_set_many_stores_every_item(cache: Cache) -> None:
    items = [(key(), result_blob(i)) for i in range(25)]
    await cache.set_many(items)
    for k, blob in items:
        assert await cache.get(k) == blob
    await cache.set_many([])  # an empty batch is a no-op, not an error


async def test_ttl_expiry(cache: Cache) -> None:
    short, long = key(), key()
    await cache.set(short, result_blob("short"), ttl=0.3)
    await cache.set_many([(long, result_blob("long"))], ttl=30)
    assert await cache.get(short) == result_blob("short")
    await asyncio.sleep(0.7)
    assert await cache.get(short) is None
    assert await cache.get(long) == result_blob("long")


@pytest.mark.parametrize(
    "bad",
    [
        "a string",
        bytearray(result_blob(1)),
        b"\x80\x04K\x01.",  # a pickle, not an envelope
        b"AKE" + b"\x00" * 60,
        envelope(b'"not a result"', flags=EnvelopeFlags.NONE),
        result_blob(1)[:-1],  # truncated
    ],
    ids=["str", "bytearray", "pickle", "bad-version", "not-result", "truncated"],
)
async def test_refuses_anything_but_result_envelopes(cache: Cache, bad: object) -> None:
    k = key()
    with pytest.raises(InvalidPayloadError):
        await cache.set(k, bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidPayloadError):
        await cache.set_many([(key(), result_blob(1)), (k, bad)])  # type: ignore[list-item]
    assert await cache.get(k) is None


async def test_users_keys_do_not_mix(cache: Cache) -> None:
    part = uuid.uuid4().hex
    await cache.set(key("alice", part), result_blob("alice's"))
    assert await cache.get(key("bob", part)) is None
    await cache.set(key("bob", part), result_blob("bob's"))
    assert await cache.get(key("alice", part)) == result_blob("alice's")
    assert await cache.get(key("bob", part)) == result_blob("bob's")


async def test_concurrent_writers(cache: Cache) -> None:
    keys = [key() for _ in range(100)]
    await asyncio.gather(*(cache.set(k, result_blob(k)) for k in keys))
    got = await asyncio.gather(*(cache.get(k) for k in keys))
    assert got == [result_blob(k) for k in keys]


async def test_aclose_is_idempotent(cache: Cache) -> None:
    await cache.set(key(), result_blob(1))
    await cache.aclose()
    await cache.aclose()
