"""Bind an envelope the engine just made to a second context without encoding it again.

A stage result goes to the store bound to ``store:{run_id}:{agent}`` and to the cache bound to
its cache key. Both envelopes carry the same header and payload; only the 32-byte tag differs
(see :mod:`agentkit.envelope` for the layout and the tag). Re-computing the tag over the same
payload costs a hash instead of a second serialization.

The supervisor builds a :class:`Rebinder` only when it knows the codec's signing key (it derived
it) or the codec is unsigned, and checks it once at start against the codec itself: a blob
rebound by it must decode with the codec under the new context. Otherwise the engine encodes
twice, as before.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from agentkit.codec import Codec
from agentkit.envelope import TAG_SIZE
from agentkit.result import SerializableAgentResult

__all__ = ["Rebinder", "checked_rebinder"]

_LEN = struct.Struct(">I")
_UNSIGNED_PREFIX = b"agentkit/unsigned"
_KEY_LEN_OFFSET = 6  # magic(3) version(1) layer(1) flags(1), then the key id length


class Rebinder:
    """Re-tags envelopes made by one codec for another context.

    Args:
        key: the codec's signing key, or ``None`` for an unsigned codec.
    """

    __slots__ = ("_template",)

    def __init__(self, key: bytes | None) -> None:
        # an HMAC object copied per use: unlike hmac.digest() it keeps the GIL for short inputs
        self._template = None if key is None else hmac.new(key, digestmod=hashlib.sha256)

    def rebind(self, blob: bytes, context: bytes) -> bytes:
        """``blob`` (an envelope this codec made) bound to ``context`` instead."""
        header_size = 7 + blob[_KEY_LEN_OFFSET] + 4
        body = blob[: len(blob) - TAG_SIZE]
        ctx = _LEN.pack(len(context)) + context
        if self._template is None:
            tag = hashlib.sha256(
                b"".join((_UNSIGNED_PREFIX, body[:header_size], ctx, body[header_size:]))
            ).digest()
        else:
            mac = self._template.copy()
            mac.update(body[:header_size])
            mac.update(ctx)
            mac.update(body[header_size:])
            tag = mac.digest()
        return body + tag


def checked_rebinder(codec: Codec, key: bytes | None) -> Rebinder | None:
    """A Rebinder for ``codec`` if it provably produces blobs the codec accepts, else None.

    Args:
        codec: the codec the engine encodes with.
        key: its signing key (``None`` when the codec is unsigned).
    """
    if (key is None) != (codec.signing_key_id is None):
        return None
    rebinder = Rebinder(key)
    probe = SerializableAgentResult.from_raw(
        {"probe": [1, "two", 3.0]}, agent="probe", user_id="probe", run_id="probe"
    )
    try:
        blob = codec.encode_result(probe, context=b"agentkit/probe/a")
        moved = rebinder.rebind(blob, b"agentkit/probe/b")
        back: SerializableAgentResult = codec.decode_result(moved, context=b"agentkit/probe/b")
    except Exception:
        return None
    if back.output != probe.output or moved == blob:
        return None
    try:  # and the moved blob must no longer verify under its old context
        codec.decode_result(moved, context=b"agentkit/probe/a")
    except Exception:
        return rebinder
    return None
