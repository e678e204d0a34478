"""The native pass seeds reused tzinfo objects into its memo prologue."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from agentkit.codec import pickle_layer
from agentkit.sanitizer import ObjectSanitizer


def _payload(tz: object) -> dict[str, object]:
    base = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    return {"at": [(base + timedelta(minutes=i)).astimezone(tz) for i in range(20)]}  # type: ignore[arg-type]


def test_reused_timezone_is_seeded_and_round_trips() -> None:
    san = ObjectSanitizer(native=False)
    tz = timezone(timedelta(hours=2), "CEST")
    value = _payload(tz)
    sizes = []
    for _ in range(3):
        clean, report, data = san.sanitize_pickled(value)
        assert clean is value and report.total == 0
        assert pickle_layer.loads(data) == value
        back = pickle.loads(data)
        assert back == value
        assert all(d.tzinfo.tzname(None) == "CEST" for d in back["at"])
        sizes.append(len(data))
    assert san._fast is not None and tz in san._fast.seeds.tzinfos
    assert sizes[2] < sizes[0]


def test_reused_zoneinfo_is_seeded_and_round_trips() -> None:
    san = ObjectSanitizer(native=False)
    value = _payload(ZoneInfo("Europe/Paris"))
    for _ in range(3):
        _, _, data = san.sanitize_pickled(value)
        back = pickle_layer.loads(data)
        assert back == value
        assert all(str(d.tzinfo) == "Europe/Paris" for d in back["at"])
    assert san._fast is not None and len(san._fast.seeds.tzinfos) == 1


def test_fresh_timezones_are_not_seeded_and_seeds_stay_bounded() -> None:
    san = ObjectSanitizer(native=False)
    assert san._fast is not None
    for i in range(30):  # a new timezone object per call: never reused, never seeded
        value = _payload(timezone(timedelta(minutes=i + 1)))
        _, _, data = san.sanitize_pickled(value)
        assert pickle_layer.loads(data) == value
    assert san._fast.seeds.tzinfos == ()
    zones = [timezone(timedelta(minutes=-i - 1)) for i in range(20)]
    for tz in zones:  # each reused once: seeded, but never more than the bound
        for _ in range(2):
            san.sanitize_pickled(_payload(tz))
    assert 0 < len(san._fast.seeds.tzinfos) <= 8
    for tz in zones:
        value = _payload(tz)
        assert pickle_layer.loads(san.sanitize_pickled(value)[2]) == value


def test_seeded_timezone_inside_a_walked_value_round_trips() -> None:
    san = ObjectSanitizer(native=False)
    tz = timezone(timedelta(hours=-5))
    clean_part = _payload(tz)
    for _ in range(3):
        san.sanitize_pickled(clean_part)
    dirty = {"ok": clean_part, "lock": __import__("threading").Lock()}
    clean, report, data = san.sanitize_pickled(dirty)
    assert report.total == 1
    assert pickle_layer.loads(data) == clean


def test_walk_after_a_failed_native_pass_matches_the_pure_walk() -> None:
    # shapes where the walk skips (or must not skip) retrying the one container child of
    # a dict whose native pass failed: the result never depends on the guess
    import os
    import threading

    def shapes() -> list[object]:
        recs = [{"i": i, "tags": ["a", "b"]} for i in range(5)]
        lock = threading.Lock()
        return [
            {"recs": [*recs[:2], {"mod": os}, *recs[2:]], "n": 1},
            {"recs": recs, "fn": len, "n": 1},  # the culprit is a direct value
            {("k", lock): 1, "recs": recs},  # the culprit is in a key
            {"a": {"b": {"c": [1, {"lock": lock}]}}},
            {"only": (1, 2, lock)},
        ]

    fast, slow = ObjectSanitizer(native=False), ObjectSanitizer(fast_path=False)
    for a, b in zip(shapes(), shapes(), strict=True):
        clean_a, rep_a, data = fast.sanitize_pickled(a)
        clean_b, rep_b = slow.sanitize(b)
        assert clean_a == clean_b
        assert [(e.path, e.kind) for e in rep_a.entries] == [
            (e.path, e.kind) for e in rep_b.entries
        ]
        assert pickle_layer.loads(data) == clean_a


def test_seeds_change_safely_while_other_threads_encode() -> None:
    import threading

    san = ObjectSanitizer(native=False)
    zones = [timezone(timedelta(minutes=15 * i)) for i in range(1, 13)]  # > the seed bound
    errors: list[str] = []

    def work(k: int) -> None:
        for j in range(60):
            value = _payload(zones[(k + j) % len(zones)])
            if j % 7 == 0:
                value["lock"] = threading.Lock()  # type: ignore[assignment]
            clean, _, data = san.sanitize_pickled(value)
            if pickle_layer.loads(data) != clean:
                errors.append(f"thread {k} pass {j}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
