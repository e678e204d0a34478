"""Cost of making a result safe, relative to ``pickle.dumps`` of the same clean object.

Run: ``python tests/benchmarks/bench_results.py``. Prints one table with, for a ~10 KB
result (50 recommendation dicts with UUIDs, tz-aware datetimes, floats, strings and lists),
clean and with a module, a lock and a lambda buried in it, the median time per operation
and its ratio to ``pickle.dumps(clean)``. Targets: clean from_raw + encode <= 1.0x;
contaminated <= 1.5x.

One sanitizer is reused for every call, as the engine does; its native pass seeds tzinfo
objects that recur from one call to the next (here the one local offset), so the figures
are those of that steady state (a fresh tzinfo object per call costs about 0.35x more).
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import threading
import timeit
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from agentkit.codec import Codec
from agentkit.result import SerializableAgentResult
from agentkit.sanitizer import ObjectSanitizer

KEY = b"bench-signing-key-0123456789abcd"
CTX = b"cache:0123456789abcdef:run-1:optimize"
IDS: dict[str, Any] = {"agent": "optimize", "agent_version": "1", "user_id": "u1", "run_id": "r1"}


def clean_payload(utc_only: bool = False) -> dict[str, Any]:
    # one timestamp in UTC (as backends store them), one in the user's local offset
    local = UTC if utc_only else timezone(timedelta(hours=2))
    base = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    recs = [
        {
            "id": uuid.UUID(int=(i + 1) * 0x1234567890ABCDEF),
            "created_at": base + timedelta(minutes=i),
            "valid_until": (base + timedelta(days=30, minutes=i)).astimezone(local),
            "title": f"Move workload {i} from gpt-4o to gpt-4o-mini",
            "provider": "openai",
            "monthly_saving_usd": 1234.5 + i,
            "confidence": 0.5 + i / 200,
            "models": ["gpt-4o", "gpt-4o-mini"],
            "scores": [0.1 * i, 0.2, 0.3],
        }
        for i in range(50)
    ]
    return {"user": "u1", "generated_at": base, "recommendations": recs, "total_usd": 99.5}


def contaminated_payload(utc_only: bool = False) -> dict[str, Any]:
    data = clean_payload(utc_only)
    recs = data["recommendations"]
    recs[7]["client"] = {"transport": os}  # a module
    recs[23]["guard"] = threading.Lock()  # a lock
    recs[41]["score_fn"] = lambda x: x * 2  # a lambda
    return data


def paired(
    op: Callable[[], object], base: Callable[[], object], number: int, repeat: int
) -> tuple[float, float]:
    """Median time per call of ``op`` (us) and the median of its per-round ratio to ``base``.

    Each round times ``base`` and ``op`` back to back, so a noisy (shared) machine slows both
    alike and the ratio stays meaningful.
    """
    op()
    base()
    times: list[float] = []
    ratios: list[float] = []
    for _ in range(repeat):
        b = timeit.timeit(base, number=number)
        t = timeit.timeit(op, number=number)
        times.append(t / number * 1e6)
        ratios.append(t / b)
    return statistics.median(times), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--utc-only", action="store_true", help="every timestamp in UTC (no local offsets)"
    )
    args = parser.parse_args()

    san = ObjectSanitizer()
    pickle_codec = Codec([("k1", KEY)], layers=("pickle",))
    json_codec = Codec([("k1", KEY)], layers=("json",))
    str_codec = Codec([("k1", KEY)], layers=("str",))

    clean = clean_payload(args.utc_only)

    def baseline() -> bytes:
        return pickle.dumps(clean, 5)

    base = (
        statistics.median(timeit.repeat(baseline, number=args.number, repeat=args.repeat))
        / args.number
        * 1e6
    )
    size = len(baseline())

    rows: list[tuple[str, list[tuple[float, float]]]] = []

    def row(label: str, make: Callable[[Any], Callable[[], object]]) -> None:
        rows.append(
            (label, [paired(make(p), baseline, args.number, args.repeat) for p in payloads])
        )

    payloads = [clean_payload(args.utc_only), contaminated_payload(args.utc_only)]
    for p in payloads:  # steady state: recurring tzinfo objects are seeded after two passes
        for _ in range(3):
            san.sanitize_pickled(p)
    res = [SerializableAgentResult.from_raw(p, **IDS, sanitizer=san) for p in payloads]
    by_id = {id(p): r for p, r in zip(payloads, res, strict=True)}
    blobs_p = {id(p): pickle_codec.encode_result(by_id[id(p)], CTX) for p in payloads}
    blobs_j = {id(p): json_codec.encode_result(by_id[id(p)], CTX) for p in payloads}
    blobs_s = {id(p): str_codec.encode_result(by_id[id(p)], CTX) for p in payloads}

    row("sanitize", lambda p: lambda: san.sanitize(p))
    row("sanitize_pickled", lambda p: lambda: san.sanitize_pickled(p))
    row(
        "from_raw (hook + sanitize)",
        lambda p: lambda: SerializableAgentResult.from_raw(p, **IDS, sanitizer=san),
    )
    row(
        "sanitize + encode, pickle layer",
        lambda p: (
            lambda: pickle_codec.encode_result(
                SerializableAgentResult.from_raw(p, **IDS, sanitizer=san), CTX
            )
        ),
    )
    row(
        "sanitize + encode, JSON layer",
        lambda p: (
            lambda: json_codec.encode_result(
                SerializableAgentResult.from_raw(p, **IDS, sanitizer=san), CTX
            )
        ),
    )
    row(
        "encode only, pickle layer", lambda p: lambda: pickle_codec.encode_result(by_id[id(p)], CTX)
    )
    row("encode only, JSON layer", lambda p: lambda: json_codec.encode_result(by_id[id(p)], CTX))
    row("decode, pickle layer", lambda p: lambda: pickle_codec.decode_result(blobs_p[id(p)], CTX))
    row("decode, JSON layer", lambda p: lambda: json_codec.decode_result(blobs_j[id(p)], CTX))
    row(
        "encode only, str layer (lossy)",
        lambda p: lambda: str_codec.encode_result(by_id[id(p)], CTX),
    )
    row("decode, str layer (lossy)", lambda p: lambda: str_codec.decode_result(blobs_s[id(p)], CTX))

    print(
        f"payload: pickle.dumps(clean) = {size} bytes, {base:.1f} us (median of "
        f"{args.repeat} x {args.number}); envelope sizes: pickle "
        f"{len(blobs_p[id(payloads[0])])} B, JSON {len(blobs_j[id(payloads[0])])} B"
    )
    print(
        "contaminated = the same payload with a module, a lock and a lambda buried in it "
        "(pickle.dumps cannot encode it at all)"
    )
    print(
        "ratio = median over rounds of (operation time / pickle.dumps(clean) time, "
        "measured back to back)"
    )
    print(f"{'operation':34} {'clean us':>9} {'ratio':>6}   {'contam. us':>10} {'ratio':>6}")
    for label, ((c, cr), (d, dr)) in rows:
        print(f"{label:34} {c:9.1f} {cr:5.2f}x   {d:10.1f} {dr:5.2f}x")
    (_, clean_ratio), (_, dirty_ratio) = dict(rows)["sanitize + encode, pickle layer"]
    print(
        f"targets: clean sanitize + encode <= 1.0x -> {clean_ratio:.2f}x; "
        f"contaminated <= 1.5x -> {dirty_ratio:.2f}x"
    )


if __name__ == "__main__":
    main()
