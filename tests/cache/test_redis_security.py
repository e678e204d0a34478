"""Hostile bytes written straight into Redis: a miss (counted), never executed, never returned.

Goes through the Supervisor's cache read path (``Supervisor.cached_result``: RedisCache.get,
then ``Codec.decode_result`` under the stage's result context, then the check that the result
is the reader's), with a signing key as in production.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import secrets
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from agentkit.agent import AgentContext
from agentkit.cache.redis import RedisCache
from agentkit.engine import result_context
from agentkit.envelope import EnvelopeFlags, LayerTag, encode_header
from agentkit.keys import cache_key
from agentkit.result import SerializableAgentResult
from agentkit.supervisor import Supervisor
from agentkit.telemetry import Telemetry
from agentkit.testing import make_agent

REDIS_URL = "redis://127.0.0.1:6379/0"
SIGNING_KEY = b"security-test-signing-key-0123456789"


class _OpensAFile:
    """Unpickling this calls ``open(path, "w")``: proof of code execution if it ever runs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def _sealed(
    layer: LayerTag, payload: bytes, context: bytes, key: tuple[str, bytes] | None
) -> bytes:
    """An envelope built by hand, exactly as the documented layout says."""
    flags = EnvelopeFlags.RESULT | (EnvelopeFlags.SIGNED if key else EnvelopeFlags.NONE)
    header = encode_header(layer, flags, key[0] if key else "", len(payload))
    body = header + struct.pack(">I", len(context)) + context + payload
    if key:
        tag = hmac.new(key[1], body, hashlib.sha256).digest()
    else:
        tag = hashlib.sha256(b"agentkit/unsigned" + body).digest()
    return header + payload + tag


def _cache_errors(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    total = 0
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "agentkit.cache.errors":
                    total += sum(int(p.value) for p in metric.data.data_points)  # type: ignore[union-attr]
    return total


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Supervisor, RedisCache, Any, Any]]:
    prefix = f"akt-sec-{secrets.token_hex(6)}:"
    cache = RedisCache(REDIS_URL, key_prefix=prefix)
    raw = redis_asyncio.from_url(REDIS_URL)
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])

    def echo(ctx: AgentContext) -> dict[str, Any]:
        return {"owner": ctx.user_id, "motto": f"motto-of-{ctx.user_id}"}

    sup = Supervisor(
        [make_agent("echo", echo)],
        cache=cache,
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        signing_key=SIGNING_KEY,
        telemetry=Telemetry(meter_provider=meters),
    )
    try:
        async with sup:
            yield sup, cache, raw, reader
    finally:
        await cache.aclose()
        keys = [k async for k in raw.scan_iter(match=f"{prefix}*")]
        if keys:
            await raw.delete(*keys)
        await raw.aclose()
        meters.shutdown()


async def test_hostile_blobs_in_redis_are_counted_misses(
    setup: tuple[Supervisor, RedisCache, Any, Any], tmp_path: Path
) -> None:
    sup, cache, raw, reader = setup
    alice = await sup.run("alice", ["echo"])
    bob = await sup.run("bob", ["echo"])
    key_a = cache_key("agentkit", sup.hasher.hash("alice"), alice.run_id, "echo")
    key_b = cache_key("agentkit", sup.hasher.hash("bob"), bob.run_id, "echo")
    good = await sup.cached_result("alice", alice.run_id, "echo")
    assert isinstance(good, SerializableAgentResult)
    assert good.output == {"owner": "alice", "motto": "motto-of-alice"}
    assert _cache_errors(reader) == 0

    original = await raw.get(cache.key_prefix + key_a)
    assert original is not None
    marker = tmp_path / "pwned"
    bomb = pickle.dumps(_OpensAFile(marker), protocol=5)
    ctx = result_context(alice.run_id, "echo")
    assert sup.codec.signing_key_id is not None
    hostile = {
        "flipped byte": original[:40] + bytes([original[40] ^ 0x01]) + original[41:],
        "unsigned pickle": _sealed(LayerTag.PICKLE, bomb, ctx, None),
        "pickle with forged HMAC": _sealed(
            LayerTag.PICKLE, bomb, ctx, (sup.codec.signing_key_id, b"attacker-guess-0123456789")
        ),
        "bob's blob copied to alice's key": await raw.get(cache.key_prefix + key_b),
    }
    for n, (what, blob) in enumerate(hostile.items(), start=1):
        assert blob is not None
        await raw.set(cache.key_prefix + key_a, blob)
        assert await cache.get(key_a) == blob  # the bytes are there: the codec must refuse
        got = await sup.cached_result("alice", alice.run_id, "echo")
        assert got is None, f"{what}: returned {got!r}"
        assert _cache_errors(reader) == n, f"{what}: not counted"
        assert not marker.exists(), f"{what}: the pickle was executed"

    # bob's own entry is untouched and still his
    theirs = await sup.cached_result("bob", bob.run_id, "echo")
    assert theirs is not None and theirs.output["owner"] == "bob"
    # alice cannot read bob's entry by naming his run
    assert await sup.cached_result("alice", bob.run_id, "echo") is None
    # nor when bob's authentic blob is planted under alice's key for bob's run: the blob
    # verifies (same run, same stage) but names bob as its user
    planted = cache_key("agentkit", sup.hasher.hash("alice"), bob.run_id, "echo")
    await raw.set(cache.key_prefix + planted, await raw.get(cache.key_prefix + key_b))
    errors = _cache_errors(reader)
    assert await sup.cached_result("alice", bob.run_id, "echo") is None
    assert _cache_errors(reader) == errors + 1
