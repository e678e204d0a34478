"""The store contract: every store backend in the registry must pass all of these."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from contract_records import T0, decode_record, make_result, make_run

from agentkit.errors import InvalidPayloadError
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.base import Store
from agentkit.store.records import ResultRecord


def uid() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def rid() -> str:
    return f"run-{uuid.uuid4().hex}"


async def test_is_a_store(store: Store) -> None:
    assert isinstance(store, Store)


async def test_run_round_trip(store: Store) -> None:
    user, run_id = uid(), rid()
    run = make_run(user, run_id, status=RunStatus.FAILED)
    await store.save_run(run)
    got = await store.get_run(user, run_id)
    assert got is not None
    assert got.run == run
    assert got.results == []


async def test_results_round_trip_and_belong_to_their_run(store: Store) -> None:
    user, run_id = uid(), rid()
    await store.save_run(make_run(user, run_id))
    recs = [make_result(user, run_id, a, minute=i) for i, a in enumerate(["triage", "data"])]
    await store.save_results(recs)
    got = await store.get_run(user, run_id)
    assert got is not None
    assert sorted(got.results, key=lambda r: r.agent) == sorted(recs, key=lambda r: r.agent)
    listed = await store.list_results(user, run_id=run_id)
    assert [r.blob for r in listed] == [recs[1].blob, recs[0].blob]  # newest first


async def test_missing_run_is_none(store: Store) -> None:
    assert await store.get_run(uid(), rid()) is None


async def test_other_users_run_is_invisible(store: Store) -> None:
    alice, bob, run_id = uid(), uid(), rid()
    await store.save_run(make_run(alice, run_id))
    await store.save_results([make_result(alice, run_id, "triage")])
    assert await store.get_run(bob, run_id) is None
    assert await store.list_runs(bob) == []
    assert await store.list_results(bob) == []
    assert await store.list_results(bob, run_id=run_id) == []


async def test_lists_never_include_other_users(store: Store) -> None:
    users = [uid() for _ in range(5)]
    for n, user in enumerate(users):
        for i in range(n + 1):
            run_id = rid()
            await store.save_run(make_run(user, run_id, minute=i))
            await store.save_results([make_result(user, run_id, "triage", minute=i)])
    for n, user in enumerate(users):
        runs = await store.list_runs(user)
        results = await store.list_results(user)
        assert len(runs) == n + 1 and {r.user_id for r in runs} == {user}
        assert len(results) == n + 1 and {r.user_id for r in results} == {user}


async def test_another_user_cannot_overwrite_a_run_or_result(store: Store) -> None:
    alice, mallory, run_id = uid(), uid(), rid()
    await store.save_run(make_run(alice, run_id))
    await store.save_results([make_result(alice, run_id, "triage", output={"mine": 1})])
    await store.save_run(make_run(mallory, run_id, status=RunStatus.CANCELLED))
    await store.save_results([make_result(mallory, run_id, "triage", output={"stolen": 1})])
    got = await store.get_run(alice, run_id)
    assert got is not None
    assert got.run.user_id == alice and got.run.status is RunStatus.RUNNING
    assert [json.loads(r.output_json) for r in got.results] == [{"mine": 1}]
    assert await store.get_run(mallory, run_id) is None


async def test_saves_are_idempotent(store: Store) -> None:
    user, run_id = uid(), rid()
    run = make_run(user, run_id, status=RunStatus.SUCCEEDED)
    recs = [make_result(user, run_id, "triage"), make_result(user, run_id, "data", minute=1)]
    for _ in range(3):
        await store.save_run(run)
        await store.save_results(recs)
    assert len(await store.list_runs(user)) == 1
    assert len(await store.list_results(user)) == 2
    got = await store.get_run(user, run_id)
    assert got is not None and len(got.results) == 2


async def test_a_later_save_replaces_the_stage_result(store: Store) -> None:
    user, run_id = uid(), rid()
    await store.save_results([make_result(user, run_id, "data", status=AgentStatus.FAILED)])
    retried = make_result(user, run_id, "data", minute=1, output={"ok": True})
    await store.save_results([retried])
    listed = await store.list_results(user)
    assert listed == [retried]


async def test_run_status_progresses_and_never_goes_back(store: Store) -> None:
    user, run_id = uid(), rid()
    await store.save_run(make_run(user, run_id, status=RunStatus.QUEUED))
    await store.save_run(make_run(user, run_id, status=RunStatus.RUNNING))
    done = make_run(user, run_id, status=RunStatus.SUCCEEDED)
    await store.save_run(done)
    await store.save_run(make_run(user, run_id, status=RunStatus.RUNNING))  # late, stale
    got = await store.get_run(user, run_id)
    assert got is not None and got.run == done


async def test_list_runs_filters_and_order(store: Store) -> None:
    user = uid()
    statuses = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.RUNNING]
    ids = [rid() for _ in statuses]
    for i, (run_id, st) in enumerate(zip(ids, statuses, strict=True)):
        await store.save_run(make_run(user, run_id, status=st, minute=i * 10))
    assert [r.run_id for r in await store.list_runs(user)] == ids[::-1]
    ok = await store.list_runs(user, status=RunStatus.SUCCEEDED)
    assert [r.run_id for r in ok] == [ids[2], ids[0]]
    window = await store.list_runs(
        user, since=T0 + timedelta(minutes=10), until=T0 + timedelta(minutes=30)
    )
    assert [r.run_id for r in window] == [ids[2], ids[1]]  # since inclusive, until exclusive
    assert [r.run_id for r in await store.list_runs(user, limit=2)] == [ids[3], ids[2]]


async def test_list_results_filters_and_order(store: Store) -> None:
    user = uid()
    run_a, run_b = rid(), rid()
    recs = [
        make_result(user, run_a, "triage", minute=0),
        make_result(user, run_a, "data", minute=1, status=AgentStatus.FAILED),
        make_result(user, run_b, "triage", minute=2),
        make_result(user, run_b, "data", minute=3, status=AgentStatus.TIMED_OUT),
        make_result(user, run_b, "reporting", minute=4, status=AgentStatus.SKIPPED),
    ]
    await store.save_results(recs)
    assert await store.list_results(user) == recs[::-1]
    assert await store.list_results(user, agent="triage") == [recs[2], recs[0]]
    assert await store.list_results(user, status=AgentStatus.FAILED) == [recs[1]]
    assert await store.list_results(user, run_id=run_b, agent="data") == [recs[3]]
    since, until = T0 + timedelta(minutes=1), T0 + timedelta(minutes=3, seconds=2)
    assert await store.list_results(user, since=since, until=until) == [recs[2], recs[1]]
    assert await store.list_results(user, limit=1) == [recs[4]]


async def test_refuses_records_without_result_envelopes(store: Store) -> None:
    user, run_id = uid(), rid()
    good = make_result(user, run_id, "triage")
    bad = [
        good.model_copy(update={"blob": b"plain bytes"}),
        good.model_copy(update={"blob": b"\x80\x04\x95" + b"\x00" * 40}),
    ]
    for rec in bad:
        with pytest.raises(InvalidPayloadError):
            await store.save_results([good, rec])
    with pytest.raises(InvalidPayloadError):
        await store.save_results([good.model_dump()])  # type: ignore[list-item]
    with pytest.raises(InvalidPayloadError):
        await store.save_run(make_run(user, run_id).model_dump())  # type: ignore[arg-type]
    assert await store.list_results(user) == []  # nothing of a refused batch is written


async def test_concurrent_saves_are_all_acknowledged_and_visible(store: Store) -> None:
    user = uid()

    async def one_run(i: int) -> str:
        run_id = rid()
        await store.save_run(make_run(user, run_id, minute=i))
        await store.save_results([make_result(user, run_id, a, minute=i) for a in ("x", "y")])
        await store.save_run(make_run(user, run_id, status=RunStatus.SUCCEEDED, minute=i))
        return run_id

    run_ids = await asyncio.gather(*(one_run(i) for i in range(60)))
    runs = await store.list_runs(user, limit=1000)
    assert {r.run_id for r in runs} == set(run_ids)
    assert {r.status for r in runs} == {RunStatus.SUCCEEDED}
    assert len(await store.list_results(user, limit=1000)) == 120


async def test_start_and_aclose_are_idempotent(make_store: Callable[[], Store]) -> None:
    s = make_store()
    await s.start()
    await s.start()
    await s.aclose()
    await s.aclose()


async def test_recovery_marks_unfinished_runs_interrupted(
    make_store: Callable[[], Store],
) -> None:
    user = uid()
    ids = {st: rid() for st in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCEEDED)}
    first = make_store()
    await first.start()
    for st, run_id in ids.items():
        await first.save_run(make_run(user, run_id, status=st))
    await first.save_results([make_result(user, ids[RunStatus.RUNNING], "triage")])
    await first.aclose()  # as a crashed process would: runs left queued / running

    second = make_store()
    await second.start()
    try:
        for st, run_id in ids.items():
            got = await second.get_run(user, run_id)
            assert got is not None
            if st.is_terminal:
                assert got.run.status is st
            else:
                assert got.run.status is RunStatus.INTERRUPTED
                assert got.run.finished_at is not None
        running = await second.get_run(user, ids[RunStatus.RUNNING])
        assert running is not None and [r.agent for r in running.results] == ["triage"]
        assert await second.list_runs(user, status=RunStatus.RUNNING) == []
    finally:
        await second.aclose()


async def test_blobs_survive_exactly_and_decode_to_the_result(store: Store) -> None:
    user, run_id = uid(), rid()
    payload = {"bin": bytes(range(256)), "text": "żółw ✓", "n": [1.5, None, True]}
    rec = make_result(user, run_id, "data", output=payload)
    await store.save_results([rec])
    (got,) = await store.list_results(user)
    assert isinstance(got, ResultRecord) and got.blob == rec.blob
    result = decode_record(got)
    assert (result.user_id, result.run_id, result.agent) == (user, run_id, "data")
    assert result.output == payload
