"""EventStream: events pushed as a mapping or as keys and values read back alike."""

from __future__ import annotations

import gc

from agentkit.events import EventStream, RunEvent


async def test_events_pushed_as_items_read_as_dicts_in_order() -> None:
    stream = EventStream("r1", "u1", maxlen=3)
    stream.push("run_started", None, {"pipeline": ["a"]})
    stream.push_items("agent_started", "a", ("attempt",), (1,))
    stream.push_items("agent_completed", "a", ("attempt", "status"), (1, "succeeded"))
    stream.push("progress", "a")
    stream.close()
    events = [e async for e in stream]
    assert stream.dropped == 1  # the oldest went when the fourth arrived
    assert [(e.kind, e.seq) for e in events] == [
        ("agent_started", 2),
        ("agent_completed", 3),
        ("progress", 4),
    ]
    assert all(isinstance(e, RunEvent) and e.run_id == "r1" and e.user_id == "u1" for e in events)
    assert events[0].data == {"attempt": 1}
    assert list(events[1].data.items()) == [("attempt", 1), ("status", "succeeded")]
    assert events[2].data == {}


def test_unread_plain_events_leave_the_collectors_tracking() -> None:
    stream = EventStream("r1", "u1", maxlen=8)
    stream.push_items("agent_started", "a", ("attempt",), (1,))
    gc.collect()
    gc.collect()
    assert not any(gc.is_tracked(entry) for entry in stream._buf)
