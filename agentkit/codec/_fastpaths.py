"""The codec's fast paths: the pickle of plain result metadata, the envelope parser for
well-formed bytes, and HMAC-SHA256 from keyed hash states. Each gives exactly what the general
path gives (``pickle_layer.dumps``, ``parse_header``, ``hmac.digest``)."""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from agentkit.codec import pickle_layer
from agentkit.envelope import FORMAT_VERSION, MAGIC, TAG_SIZE, EnvelopeFlags, parse_header

__all__ = ["HmacSha256", "dump_plain", "parse", "plain_meta"]

_CTX_LEN = struct.Struct(">I")
_FIXED = struct.Struct(">3sBBBB")  # magic, version, layer, flags, key id length
_SIGNED = int(EnvelopeFlags.SIGNED)


def _meta_seeds() -> tuple[bytes, dict[int, tuple[int, Any]]]:
    """Pickle ops that put the classes a UTC or naive datetime reduces to (and
    ``timezone.utc``) into the unpickler's memo, and the matching pickler memo.

    A pickler given that memo writes each of them as a two-byte memo reference instead of a
    global lookup (and ``timezone.utc`` without its slow ``tzinfo.__reduce__``).
    """
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, pickle_layer.PROTOCOL)
    pickler.dump((datetime, timezone, timedelta, UTC))
    memo = pickler.memo.copy()  # holds the seeded objects, so their ids stay theirs
    data = buf.getvalue()
    # drop PROTO, and turn the final STOP into POP (same length: the frame stays valid)
    return data[2:-1] + pickle.POP, memo


_META_PROLOGUE, _META_MEMO = _meta_seeds()
_PROTO_HEADER = bytes((pickle.PROTO[0], pickle_layer.PROTOCOL))


_PLAIN_META_TYPES = frozenset({str, int, float, bool, type(None)})


def plain_meta(meta: dict[str, Any]) -> bool:
    """``meta`` (from ``_codec_meta``) holds only what a restricted unpickler loads without
    the clean pickler's checks: exact str, int, float, bool, None, and UTC or naive
    datetimes (an error, a report or extra fields take the clean pickler)."""
    for value in meta.values():
        t = type(value)
        if t not in _PLAIN_META_TYPES and not (
            t is datetime and (value.tzinfo is None or value.tzinfo is UTC)
        ):
            return False
    return True


#: idle (pickler, buffer) pairs for dump_plain; taken and given back whole, so threads never
#: share one
_META_PICKLERS: list[tuple[pickle.Pickler, io.BytesIO]] = []


def dump_plain(value: tuple[Any, ...]) -> bytes:
    """``pickle_layer.dumps(value)`` for a tuple of plain values, bytes and dicts that
    :func:`plain_meta` accepts, without the clean pickler's checks (the same value loads)."""
    try:
        pickler, buf = _META_PICKLERS.pop()
    except IndexError:
        buf = io.BytesIO()
        pickler = pickle.Pickler(buf, pickle_layer.PROTOCOL)
        pickler.memo = _META_MEMO
        pickler.fast = True  # reads the seeded memo, adds nothing to it
    pickler.dump(value)
    view = buf.getbuffer()
    try:
        # the pickle without its PROTO opcode, after the one leading the seeding prologue
        payload = b"".join((_PROTO_HEADER, _META_PROLOGUE, view[2:]))
    finally:
        view.release()
    buf.seek(0)
    buf.truncate()
    if len(_META_PICKLERS) < 8:
        _META_PICKLERS.append((pickler, buf))
    return payload


_KNOWN_FLAGS = int(EnvelopeFlags.LOSSY | EnvelopeFlags.SIGNED | EnvelopeFlags.RESULT)
_MIN_ENVELOPE = _FIXED.size + _CTX_LEN.size + TAG_SIZE


def parse(blob: object) -> tuple[bytes, int, int, str, int, int]:
    """``parse_header`` for the common case: the blob as bytes, its layer, flags, key id,
    header size and payload size. Anything unusual goes through ``parse_header``, which
    raises the precise error (or, for a bytes-like blob, accepts it)."""
    if type(blob) is bytes and len(blob) >= _MIN_ENVELOPE:
        magic, version, layer, flags, key_len = _FIXED.unpack_from(blob)
        if magic == MAGIC and version == FORMAT_VERSION and not flags & ~_KNOWN_FLAGS:
            header_size = _FIXED.size + key_len + _CTX_LEN.size
            if len(blob) >= header_size + TAG_SIZE and bool(flags & _SIGNED) == bool(key_len):
                (payload_size,) = _CTX_LEN.unpack_from(blob, _FIXED.size + key_len)
                key = blob[_FIXED.size : _FIXED.size + key_len]
                if len(blob) == header_size + payload_size + TAG_SIZE and key.isascii():
                    return blob, layer, flags, key.decode("ascii"), header_size, payload_size
    header = parse_header(blob)  # type: ignore[arg-type]  # it checks the type itself
    return (
        bytes(blob),  # type: ignore[call-overload]
        header.layer,
        int(header.flags),
        header.key_id,
        header.header_size,
        header.payload_size,
    )


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class HmacSha256:
    """HMAC-SHA256 under one key, from the keyed inner and outer hash states computed once
    (RFC 2104): ``hmac.digest`` sets the key up again on every call, which costs about as
    much as hashing a small envelope."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:  # the SHA-256 block size
            key = hashlib.sha256(key).digest()
        block = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(block.translate(_IPAD))
        self._outer = hashlib.sha256(block.translate(_OPAD))

    def digest(self, msg: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(msg)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()
