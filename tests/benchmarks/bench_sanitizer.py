"""Sanitizer fast path vs pickle.dumps on a ~10 KB result (prints figures; not a test)."""

from __future__ import annotations

import os
import pickle
import threading
import timeit
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from agentkit.sanitizer import ObjectSanitizer


def payload() -> dict[str, Any]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    recs = [
        {
            "id": uuid.UUID(int=i * 7919),
            "created_at": base + timedelta(minutes=i),
            "resource": f"arn:aws:ec2:eu-west-1:123456789012:instance/i-{i:08x}",
            "action": "rightsize",
            "monthly_savings": 12.5 * i,
            "confidence": 0.5 + i / 200,
            "tags": ["compute", "ec2", f"team-{i % 5}"],
            "notes": "Instance is over-provisioned; average CPU below 10% for 30 days.",
        }
        for i in range(50)
    ]
    return {"agent": "optimizer", "recommendations": recs, "total": sum(range(50)) * 12.5}


def best(fn: Any, number: int = 2000) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def main() -> None:
    clean = payload()
    dirty = payload()
    dirty["recommendations"][10]["module"] = os
    dirty["recommendations"][20]["lock"] = threading.Lock()
    dirty["recommendations"][30]["fn"] = lambda x: x
    s = ObjectSanitizer()
    size = len(pickle.dumps(clean, protocol=5))
    base = best(lambda: pickle.dumps(clean, protocol=5))
    rows = [
        ("pickle.dumps(clean)", base),
        ("sanitize(clean)", best(lambda: s.sanitize(clean))),
        ("sanitize_pickled(clean)", best(lambda: s.sanitize_pickled(clean))),
        ("sanitize(dirty)", best(lambda: s.sanitize(dirty), 300)),
        ("sanitize_pickled(dirty)", best(lambda: s.sanitize_pickled(dirty), 300)),
    ]
    print(f"payload: {size} bytes pickled")
    for name, sec in rows:
        print(f"{name:28s} {sec * 1e6:9.1f} us  {sec / base:5.2f}x pickle.dumps")


if __name__ == "__main__":
    main()
