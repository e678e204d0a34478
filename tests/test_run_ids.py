"""Run ids: version 7 UUIDs, time-ordered, unique, fresh in a forked child."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from agentkit._run_ids import RunIds


def test_a_run_id_is_a_version_7_uuid_with_the_current_time() -> None:
    before = time.time_ns() // 1_000_000
    rid = RunIds().next()
    after = time.time_ns() // 1_000_000
    u = uuid.UUID(hex=rid)
    assert rid == u.hex and len(rid) == 32
    assert u.version == 7 and u.variant == uuid.RFC_4122
    assert before <= int(rid[:12], 16) <= after


def test_run_ids_increase_strictly_and_are_unique() -> None:
    ids = RunIds()
    made = [ids.next() for _ in range(5000)]  # many within one millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_run_ids_keep_increasing_when_the_clock_steps_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = RunIds()
    first = ids.next()
    monkeypatch.setattr(time, "time_ns", lambda: 1_000_000_000)  # 1970: far in the past
    second = ids.next()
    assert second > first and uuid.UUID(hex=second).version == 7


def test_two_sources_in_the_same_millisecond_differ_in_their_random_bits() -> None:
    a, b = RunIds(), RunIds()
    assert len({a.next() for _ in range(100)} | {b.next() for _ in range(100)}) == 200


def test_run_ids_differ_between_a_forked_child_and_its_parent() -> None:
    ids = RunIds()
    ids.next()  # a batch of random bits is now buffered
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.write(w, ids.next().encode())
        os._exit(0)
    os.close(w)
    child_id = os.read(r, 64).decode()
    os.waitpid(pid, 0)
    parent_id = ids.next()
    assert child_id and child_id[16:] != parent_id[16:]  # the random bits differ
