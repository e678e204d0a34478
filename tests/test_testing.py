"""Invariant 1 end to end, with the recording doubles of agentkit.testing: while agents
return (and emit) contaminated values, caches and stores receive only codec bytes of clean
SerializableAgentResults."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import pytest

from agentkit.agent import AgentContext
from agentkit.codec import Codec
from agentkit.errors import InvalidPayloadError
from agentkit.result import SerializableAgentResult
from agentkit.status import AgentStatus
from agentkit.store.records import ResultRecord
from agentkit.supervisor import Supervisor
from agentkit.testing import (
    RecordingCache,
    RecordingStore,
    assert_clean,
    contaminated,
    make_agent,
)


def test_the_contaminated_value_really_breaks_pickle() -> None:
    with pytest.raises((TypeError, pickle.PicklingError, AttributeError)):
        pickle.dumps(contaminated())


def test_assert_clean() -> None:
    assert_clean({"a": [1, 2.0, None, "x", b"y", (1, 2)], (1, "k"): {3}})
    with pytest.raises(AssertionError, match=r"\$\.a\[1\]"):
        assert_clean({"a": [1, threading.Lock()]})


async def test_backends_receive_only_codec_bytes_of_clean_results() -> None:
    codec = Codec(signing_keys=[("k1", b"invariant-one-test-key-0123456789")])
    cache, store = RecordingCache(codec), RecordingStore(codec)

    def dirty(ctx: AgentContext) -> Any:
        ctx.emit("progress", handle=threading.Lock(), note="half way")
        return contaminated()

    def pass_through(ctx: AgentContext) -> Any:
        # hands the upstream output back, plus new live objects
        return {"upstream": ctx.upstream["dirty"], "cb": lambda: 1, "lock": threading.RLock()}

    def fails(ctx: AgentContext) -> Any:
        raise RuntimeError("failed while holding", threading.Lock())

    agents = [
        make_agent("dirty", dirty),
        make_agent("relay", pass_through, depends_on=["dirty"]),
        make_agent("threaded", lambda ctx: contaminated(), threaded=True),
        make_agent("fails", fails),
        make_agent("skipped", depends_on=["fails"]),
    ]
    async with Supervisor(agents, cache=cache, store=store, codec=codec) as sup:
        handles = [
            await sup.submit(f"user-{i}", ["dirty", "relay", "threaded", "fails", "skipped"])
            for i in range(5)
        ]
        for h in handles:
            res = await h.result()
            assert res.stages["relay"].ok and res.stages["skipped"].status is AgentStatus.SKIPPED
            events = [e async for e in h.events()]
            for e in events:
                assert_clean(dict(e.data))
            progress = [e for e in events if e.kind == "progress"]
            assert progress[0].data["handle"]["__agentkit_placeholder__"] == "lock"

    cache.assert_invariant()
    store.assert_invariant()
    assert len(cache.writes) == 5 * 5 and len(store.result_writes) == 5 * 5
    assert len(cache.decoded) == len(store.decoded) == 25
    for key, blob in cache.writes:
        assert type(key) is str and type(blob) is bytes
    for rec in store.result_writes:
        assert type(rec) is ResultRecord and type(rec.blob) is bytes
    for result in [*cache.decoded, *store.decoded]:
        assert type(result) is SerializableAgentResult
        assert_clean(result.output)
    relay = next(r for r in store.decoded if r.agent == "relay")
    assert relay.output["lock"]["__agentkit_placeholder__"] == "lock"
    assert relay.output["upstream"]["module"]["__agentkit_placeholder__"] == "module"
    failed = next(r for r in store.decoded if r.agent == "fails")
    assert failed.status is AgentStatus.FAILED and failed.error is not None


async def test_doubles_refuse_and_report_what_is_not_codec_bytes() -> None:
    codec = Codec(signing_keys=[("k1", b"invariant-one-test-key-0123456789")])
    cache, store = RecordingCache(codec), RecordingStore(codec)
    with pytest.raises(InvalidPayloadError):
        await cache.set("k", pickle.dumps({"raw": 1}))
    with pytest.raises(InvalidPayloadError):
        await cache.set("k", {"raw": 1})  # type: ignore[arg-type]
    result = SerializableAgentResult.from_raw(1, agent="a", user_id="u", run_id="r")
    good = codec.encode_result(result, context=b"k2")
    await cache.set("k2", good)
    assert cache.decoded[-1].output == 1
    # a real envelope bound to another context is recorded as a violation
    await cache.set("other-key", good)
    with pytest.raises(AssertionError, match="invariant 1 violated"):
        cache.assert_invariant()
    with pytest.raises(InvalidPayloadError):
        await store.save_results([{"run_id": "r"}])  # type: ignore[list-item]
    assert store.violations
