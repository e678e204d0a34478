"""The codec's envelope: a fixed header, the payload, and a 32-byte tag.

Layout (all integers big-endian)::

    0   3  magic  b"AKE"
    3   1  format version (1)
    4   1  layer tag: 1 pickle, 2 json, 3 str
    5   1  flags: LOSSY, SIGNED, RESULT
    6   1  key id length N (0 when unsigned)
    7   N  key id (ASCII)
    7+N 4  payload length L
    11+N L payload
    ..  32 tag: HMAC-SHA256(key, header || u32(len(context)) || context || payload) when SIGNED,
           else SHA-256(b"agentkit/unsigned" || the same bytes): detects corruption and
           misplacement (wrong context), not forgery.

Backends never decode: they only check that a blob *is* an agent-result envelope
(:func:`require_result_envelope`) before writing it (design invariant 1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from agentkit.errors import CorruptError, InvalidPayloadError

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "TAG_SIZE",
    "EnvelopeFlags",
    "Header",
    "LayerTag",
    "parse_header",
    "require_result_envelope",
]

MAGIC = b"AKE"
FORMAT_VERSION = 1
TAG_SIZE = 32
_FIXED = struct.Struct(">3sBBBB")  # magic, version, layer, flags, key id length
_LEN = struct.Struct(">I")


class LayerTag(IntEnum):
    """Which codec layer produced the payload."""

    PICKLE = 1
    JSON = 2
    STR = 3


class EnvelopeFlags(IntFlag):
    """Bits of the flags byte."""

    NONE = 0
    LOSSY = 1  #: the payload does not round-trip exactly (always set by the string layer)
    SIGNED = 2  #: the tag is an HMAC under ``key_id``
    RESULT = 4  #: the payload is a SerializableAgentResult


@dataclass(frozen=True, slots=True)
class Header:
    """The parsed, unverified header of an envelope."""

    version: int
    layer: int
    flags: EnvelopeFlags
    key_id: str
    header_size: int
    payload_size: int

    @property
    def total_size(self) -> int:
        """Size of the whole envelope in bytes."""
        return self.header_size + self.payload_size + TAG_SIZE


def parse_header(blob: bytes | bytearray | memoryview) -> Header:
    """Parse the header of ``blob`` without verifying or decoding anything.

    Raises:
        CorruptError: ``blob`` is not a complete envelope of a known format version.
    """
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise CorruptError(f"expected bytes, got {type(blob).__name__}")
    view = memoryview(blob)
    if len(view) < _FIXED.size + _LEN.size + TAG_SIZE:
        raise CorruptError(f"not an agentkit envelope: {len(view)} bytes is too short")
    magic, version, layer, flags, key_len = _FIXED.unpack_from(view, 0)
    if magic != MAGIC:
        raise CorruptError("not an agentkit envelope: bad magic bytes")
    if version != FORMAT_VERSION:
        raise CorruptError(
            f"envelope format version {version} is not supported (this agentkit reads "
            f"version {FORMAT_VERSION}); upgrade agentkit to read it"
        )
    if flags & ~0b111:
        raise CorruptError(f"envelope has unknown flag bits: {flags:#04x}")
    offset = _FIXED.size
    if len(view) < offset + key_len + _LEN.size + TAG_SIZE:
        raise CorruptError("envelope truncated inside its header")
    key_bytes = bytes(view[offset : offset + key_len])
    try:
        key_id = key_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise CorruptError("envelope key id is not ASCII") from None
    offset += key_len
    (payload_size,) = _LEN.unpack_from(view, offset)
    offset += _LEN.size
    if len(view) != offset + payload_size + TAG_SIZE:
        raise CorruptError(
            f"envelope length mismatch: header says {offset + payload_size + TAG_SIZE} "
            f"bytes, got {len(view)}"
        )
    eflags = EnvelopeFlags(flags)
    if bool(eflags & EnvelopeFlags.SIGNED) != bool(key_id):
        raise CorruptError("envelope SIGNED flag and key id disagree")
    return Header(
        version=version,
        layer=layer,
        flags=eflags,
        key_id=key_id,
        header_size=offset,
        payload_size=payload_size,
    )


def encode_header(layer: int, flags: EnvelopeFlags, key_id: str, payload_size: int) -> bytes:
    """Build a header; the codec appends the payload and the tag."""
    kid = key_id.encode("ascii")
    if len(kid) > 255:
        raise ValueError("key id longer than 255 bytes")
    return (
        _FIXED.pack(MAGIC, FORMAT_VERSION, layer, int(flags), len(kid))
        + kid
        + _LEN.pack(payload_size)
    )


def require_result_envelope(blob: object) -> Header:
    """Check that ``blob`` is codec bytes of a SerializableAgentResult; return its header.

    Backends call this in every write method (design invariant 1). It checks the structure
    only; authenticity is checked by the codec when the blob is read.

    Raises:
        InvalidPayloadError: ``blob`` is not such an envelope.
    """
    if not isinstance(blob, bytes):
        raise InvalidPayloadError(
            f"backends store only codec bytes, got {type(blob).__name__}; encode a "
            "SerializableAgentResult with Codec.encode_result() first"
        )
    try:
        header = parse_header(blob)
    except CorruptError as exc:
        raise InvalidPayloadError(
            f"backends store only codec bytes of agent results: {exc}; encode a "
            "SerializableAgentResult with Codec.encode_result() first"
        ) from None
    if not header.flags & EnvelopeFlags.RESULT:
        raise InvalidPayloadError(
            "this envelope does not hold a SerializableAgentResult; backends store only "
            "agent results, encode one with Codec.encode_result()"
        )
    return header
