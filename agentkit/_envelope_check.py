"""A fast structural check of agent-result envelopes for backend write paths.

Backends check every blob they write (design invariant 1). :func:`check_result_envelope`
accepts exactly the blobs :func:`agentkit.envelope.require_result_envelope` accepts, but the
common case (a well-formed blob) costs a few hundred nanoseconds instead of microseconds;
anything it does not accept at once is handed to ``require_result_envelope``, which raises the
precise :class:`~agentkit.errors.InvalidPayloadError` (or accepts it).
"""

from __future__ import annotations

import struct

from agentkit.envelope import (
    FORMAT_VERSION,
    MAGIC,
    TAG_SIZE,
    EnvelopeFlags,
    require_result_envelope,
)

__all__ = ["check_result_envelope"]

_FIXED = struct.Struct(">3sBBBB")
_LEN = struct.Struct(">I")
_MIN = _FIXED.size + _LEN.size + TAG_SIZE
_RESULT = int(EnvelopeFlags.RESULT)
_SIGNED = int(EnvelopeFlags.SIGNED)
_KNOWN = int(EnvelopeFlags.LOSSY | EnvelopeFlags.SIGNED | EnvelopeFlags.RESULT)


def check_result_envelope(blob: object) -> None:
    """Raise :class:`~agentkit.errors.InvalidPayloadError` unless ``blob`` is codec bytes of
    an agent result (structure only; the codec verifies authenticity on read)."""
    if type(blob) is bytes and len(blob) >= _MIN:
        magic, version, _layer, flags, key_len = _FIXED.unpack_from(blob)
        if (
            magic == MAGIC
            and version == FORMAT_VERSION
            and flags & _RESULT
            and not flags & ~_KNOWN
            and bool(flags & _SIGNED) == bool(key_len)
            and len(blob) >= _MIN + key_len
            and blob[_FIXED.size : _FIXED.size + key_len].isascii()
        ):
            (payload_len,) = _LEN.unpack_from(blob, _FIXED.size + key_len)
            if len(blob) == _FIXED.size + key_len + _LEN.size + payload_len + TAG_SIZE:
                return
    require_result_envelope(blob)
