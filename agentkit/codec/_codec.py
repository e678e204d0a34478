"""The layered codec: pickle → JSON → string, in signed (or checksummed) envelopes."""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from agentkit.codec import json_layer, pickle_layer, str_layer
from agentkit.codec._common import NotEncodable
from agentkit.codec._fastpaths import HmacSha256, dump_plain, parse, plain_meta
from agentkit.codec.keyring import KeyInput, Keyring
from agentkit.envelope import (
    FORMAT_VERSION,
    MAGIC,
    TAG_SIZE,
    EnvelopeFlags,
    LayerTag,
    parse_header,
)
from agentkit.errors import (
    ConfigurationError,
    CorruptError,
    EncodeError,
    LayerNotAcceptedError,
    TamperedError,
    UnknownLayerError,
    UnsignedError,
)
from agentkit.result import SerializableAgentResult

__all__ = ["DEFAULT_LAYERS", "LAYER_NAMES", "BlobInfo", "Codec"]

R = TypeVar("R", bound=SerializableAgentResult)

LAYER_NAMES: Final[dict[str, LayerTag]] = {
    "pickle": LayerTag.PICKLE,
    "json": LayerTag.JSON,
    "str": LayerTag.STR,
}
DEFAULT_LAYERS: Final = ("pickle", "json", "str")
_UNSIGNED_PREFIX = b"agentkit/unsigned"
_CTX_LEN = struct.Struct(">I")
_FIXED = struct.Struct(">3sBBBB")  # magic, version, layer, flags, key id length
_SIGNED = int(EnvelopeFlags.SIGNED)
_RESULT = int(EnvelopeFlags.RESULT)
_LOSSY = int(EnvelopeFlags.LOSSY)
_RESULT_FORMAT = 1  # version of the result payload inside a layer


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What :meth:`Codec.inspect` reads from an envelope header (nothing is verified)."""

    version: int
    layer: str  #: "pickle", "json", "str", or "unknown(N)"
    layer_tag: int
    flags: EnvelopeFlags
    key_id: str | None
    header_size: int
    payload_size: int
    tag_size: int
    total_size: int

    @property
    def lossy(self) -> bool:
        """The payload does not round-trip exactly."""
        return bool(self.flags & EnvelopeFlags.LOSSY)

    @property
    def signed(self) -> bool:
        """The tag is an HMAC (else a plain checksum)."""
        return bool(self.flags & EnvelopeFlags.SIGNED)

    @property
    def is_result(self) -> bool:
        """The payload is a SerializableAgentResult."""
        return bool(self.flags & EnvelopeFlags.RESULT)


_LAYER_TAGS: Final[dict[int, LayerTag]] = {int(t): t for t in LayerTag}
_RESULT_FLAG = int(EnvelopeFlags.RESULT)
#: what _open gives its callers: layer, flags, the verifying key (None: unsigned), header
#: size and the verified payload
_Opened = tuple[LayerTag, int, bytes | None, int, bytes]


def _layer_tuple(names: Iterable[str], what: str) -> tuple[LayerTag, ...]:
    if isinstance(names, str):
        raise ConfigurationError(f"{what} must be a sequence of layer names, e.g. ('json',)")
    tags: list[LayerTag] = []
    for name in names:
        tag = LAYER_NAMES.get(name) if isinstance(name, str) else None
        if tag is None:
            raise ConfigurationError(
                f"unknown codec layer {name!r} in {what}; known: {', '.join(LAYER_NAMES)}"
            )
        if tag not in tags:
            tags.append(tag)
    return tuple(tags)


def _context_bytes(context: bytes | bytearray | memoryview | str) -> bytes:
    if type(context) is bytes:
        return context
    if isinstance(context, str):
        return context.encode("utf-8")
    if isinstance(context, bytes | bytearray | memoryview):
        return bytes(context)
    raise TypeError(f"context must be bytes or str, got {type(context).__name__}")


class Codec:
    """Encode values and agent results into authenticated envelopes, and back.

    Layers are tried in order on encode; decode reads the layer from the envelope, so data
    written by different layers (or codecs with other layer orders) reads back through one
    ``decode``. See ``docs/results.md`` for the security model.

    Args:
        signing_keys: ``None`` (unsigned, pickle off), a single key (``bytes``), a
            ``{key_id: key}`` mapping or ``[(key_id, key), ...]`` (oldest first; the last one
            signs, all verify), or a :class:`Keyring`. Keys must be at least 16 bytes.
        layers: encode order, from ``"pickle"``, ``"json"``, ``"str"``. The pickle layer is
            skipped when there is no signing key.
        accept: layers ``decode`` may load; default: every known layer. A blob of a known
            layer outside this set raises :class:`LayerNotAcceptedError`.
        allow_unsigned: let a codec with keys decode unsigned (JSON / str) blobs. Unsigned
            pickle is never loaded.
        full_pickle: load verified pickles with a full unpickler (for the sanitizer's
            ``keep_picklable`` mode). Default: only clean-domain types load.
        pickle_types: extra classes the restricted unpickler may load (and the pickler may
            write), for authors' own value types.

    Raises:
        ConfigurationError: bad keys, unknown layer names, or an empty layer list.
    """

    def __init__(
        self,
        signing_keys: KeyInput = None,
        *,
        layers: Iterable[str] = DEFAULT_LAYERS,
        accept: Iterable[str] | None = None,
        allow_unsigned: bool = False,
        full_pickle: bool = False,
        pickle_types: Iterable[type] = (),
    ) -> None:
        self._keyring = Keyring.coerce(signing_keys)
        self._sign_key = None if self._keyring is None else self._keyring.signing_key
        self._kid = b"" if self._keyring is None else self._keyring.signing_key_id.encode("ascii")
        self._layers = _layer_tuple(layers, "layers")
        if not self._layers:
            raise ConfigurationError("a codec needs at least one layer, e.g. ('json', 'str')")
        self._accept = frozenset(_layer_tuple(LAYER_NAMES if accept is None else accept, "accept"))
        self._encode_layers = tuple(
            t for t in self._layers if t is not LayerTag.PICKLE or self._keyring is not None
        )
        if not self._encode_layers:
            raise ConfigurationError(
                "the only layer is 'pickle' but there is no signing key; pass signing_keys "
                "or add the 'json' layer"
            )
        self._allow_unsigned = allow_unsigned
        self._full_pickle = full_pickle
        self._pickle_types = frozenset(pickle_types)
        self._pickle_globals = pickle_layer.safe_globals(self._pickle_types)
        self._macs: dict[bytes, HmacSha256] = {}

    # --- properties ---------------------------------------------------------------------

    @property
    def layers(self) -> tuple[str, ...]:
        """Layer names in encode order (as configured)."""
        return tuple(t.name.lower() for t in self._layers)

    @property
    def accept(self) -> frozenset[str]:
        """Layer names ``decode`` accepts."""
        return frozenset(t.name.lower() for t in self._accept)

    @property
    def signing_key_id(self) -> str | None:
        """Id of the key that signs new blobs, or ``None`` for an unsigned codec."""
        return None if self._keyring is None else self._keyring.signing_key_id

    def __repr__(self) -> str:
        return (
            f"Codec(layers={self.layers!r}, accept={sorted(self.accept)!r}, "
            f"signing_key_id={self.signing_key_id!r})"
        )

    # --- encoding -----------------------------------------------------------------------

    def encode(self, value: Any, context: bytes | str = b"") -> bytes:
        """Encode ``value`` with the first layer that can, bound to ``context``.

        A :class:`SerializableAgentResult` is encoded as :meth:`encode_result` does.

        Raises:
            EncodeError: no configured layer could encode the value (only possible when the
                string layer is not configured).
        """
        if isinstance(value, SerializableAgentResult):
            return self.encode_result(value, context)
        ctx = _context_bytes(context)
        reasons: list[str] = []
        for tag in self._encode_layers:
            try:
                if tag is LayerTag.PICKLE:
                    payload = pickle_layer.dumps(
                        value, full=self._full_pickle, extra=self._pickle_types
                    )
                    return self._seal(tag, 0, payload, ctx)
                if tag is LayerTag.JSON:
                    return self._seal(tag, 0, json_layer.dumps(value), ctx)
                return self._seal(tag, _LOSSY, str_layer.dumps(value), ctx)
            except NotEncodable as exc:
                reasons.append(f"{tag.name.lower()}: {exc}")
        raise EncodeError(
            "no codec layer could encode the value ("
            + "; ".join(reasons)
            + "); sanitize it first or add the 'str' layer"
        )

    def encode_result(self, result: SerializableAgentResult, context: bytes | str = b"") -> bytes:
        """Encode an agent result; the envelope carries the RESULT flag.

        The pickle layer reuses the output's pickle made by ``sanitize_pickled`` in
        ``from_raw`` (no second pickling). The string layer stores the metadata exactly and
        the output as text.

        Raises:
            TypeError: ``result`` is not a SerializableAgentResult.
            EncodeError: no configured layer could encode it.
        """
        if not isinstance(result, SerializableAgentResult):
            raise TypeError(
                f"encode_result needs a SerializableAgentResult, got {type(result).__name__}"
            )
        return self._encode_result(result, context, result._output_pickle_bytes())

    def _encode_result(
        self, result: SerializableAgentResult, context: bytes | str, output_pickle: bytes | None
    ) -> bytes:
        """:meth:`encode_result`; ``output_pickle`` is the pickle ``sanitize_pickled`` made
        of ``result.output`` (executors hand it over from ``_clean_raw``), or None."""
        ctx = _context_bytes(context)
        meta = result._codec_meta()
        reasons: list[str] = []
        for tag in self._encode_layers:
            try:
                if tag is LayerTag.PICKLE:
                    out = output_pickle
                    if out is None:
                        out = pickle_layer.dumps(
                            result.output, full=self._full_pickle, extra=self._pickle_types
                        )
                    if plain_meta(meta):
                        payload = dump_plain((_RESULT_FORMAT, meta, out))
                    else:
                        payload = pickle_layer.dumps(
                            (_RESULT_FORMAT, meta, out), extra=self._pickle_types
                        )
                    flags = _RESULT
                elif tag is LayerTag.JSON:
                    payload = json_layer.dumps({"f": _RESULT_FORMAT, "m": meta, "o": result.output})
                    flags = _RESULT
                else:
                    text = str_layer.to_text(result.output)
                    payload = json_layer.dumps({"f": _RESULT_FORMAT, "m": meta, "o": text})
                    flags = _RESULT | _LOSSY
                return self._seal(tag, flags, payload, ctx)
            except NotEncodable as exc:
                reasons.append(f"{tag.name.lower()}: {exc}")
        raise EncodeError(
            "no codec layer could encode the result (" + "; ".join(reasons) + "); add the "
            "'str' layer or build the result with from_raw so its output is clean"
        )

    def _seal(self, tag: LayerTag, flags: int, payload: bytes, ctx: bytes) -> bytes:
        # the layout of agentkit.envelope.encode_header, built from precomputed parts
        key = self._sign_key
        ctx_len = _CTX_LEN.pack(len(ctx))
        if key is None:
            header = b"".join(
                (_FIXED.pack(MAGIC, FORMAT_VERSION, tag, flags, 0), _CTX_LEN.pack(len(payload)))
            )
            mac = hashlib.sha256(
                b"".join((_UNSIGNED_PREFIX, header, ctx_len, ctx, payload))
            ).digest()
        else:
            header = b"".join(
                (
                    _FIXED.pack(MAGIC, FORMAT_VERSION, tag, flags | _SIGNED, len(self._kid)),
                    self._kid,
                    _CTX_LEN.pack(len(payload)),
                )
            )
            mac = self._mac(key, b"".join((header, ctx_len, ctx, payload)))
        return b"".join((header, payload, mac))

    def _mac(self, key: bytes, msg: bytes) -> bytes:
        """``hmac.digest(key, msg, "sha256")`` for one of this codec's keys."""
        mac = self._macs.get(key)
        if mac is None:
            mac = self._macs[key] = HmacSha256(key)
        return mac.digest(msg)

    def rebind(
        self,
        blob: bytes | bytearray | memoryview,
        from_context: bytes | str,
        to_context: bytes | str,
    ) -> bytes:
        """``blob`` bound to ``to_context`` instead of ``from_context``, without re-encoding.

        Re-tagging costs two hashes instead of a second serialization. The blob must verify
        under ``from_context`` first, so this never signs bytes the codec did not make.

        Raises:
            CodecError: ``blob`` does not verify under ``from_context`` (same errors as
                :meth:`decode`), or it is signed with a key that is not in this keyring.
        """
        ctx = _context_bytes(to_context)
        _tag, _flags, key, header_size, payload = self._open(blob, _context_bytes(from_context))
        head = bytes(blob[:header_size])
        signed_part = b"".join((head, _CTX_LEN.pack(len(ctx)), ctx, payload))
        if key is not None:
            mac = self._mac(key, signed_part)
        else:
            mac = hashlib.sha256(_UNSIGNED_PREFIX + signed_part).digest()
        return b"".join((head, payload, mac))

    # --- decoding -----------------------------------------------------------------------

    def inspect(self, blob: bytes | bytearray | memoryview) -> BlobInfo:
        """Read the envelope header: layer, flags, key id, sizes. Verifies and decodes nothing.

        Raises:
            CorruptError: not a structurally valid envelope.
        """
        h = parse_header(blob)
        try:
            layer = LayerTag(h.layer).name.lower()
        except ValueError:
            layer = f"unknown({h.layer})"
        return BlobInfo(
            version=h.version,
            layer=layer,
            layer_tag=h.layer,
            flags=h.flags,
            key_id=h.key_id or None,
            header_size=h.header_size,
            payload_size=h.payload_size,
            tag_size=TAG_SIZE,
            total_size=h.total_size,
        )

    def _open(self, blob: bytes | bytearray | memoryview, ctx: bytes) -> _Opened:
        """Check the envelope and its tag; return what the callers need of the header and
        the verified payload."""
        data, layer, flags, key_id, header_size, payload_size = parse(blob)
        tag = _LAYER_TAGS.get(layer)
        if tag is None:
            raise UnknownLayerError(
                f"envelope names layer {layer}, which this agentkit does not know; "
                "upgrade agentkit to read it"
            )
        if tag not in self._accept:
            raise LayerNotAcceptedError(
                f"envelope uses the {tag.name.lower()} layer, which this codec does not "
                f"accept (accept={sorted(self.accept)})"
            )
        end = header_size + payload_size
        payload = data[header_size:end]
        signed_part = b"".join((data[:header_size], _CTX_LEN.pack(len(ctx)), ctx, payload))
        if flags & _SIGNED:
            if self._keyring is None:
                if tag is LayerTag.PICKLE:
                    raise UnsignedError(
                        "pickle blobs load only through a codec with signing keys; pass the "
                        "signing key that wrote it"
                    )
                raise TamperedError(
                    f"blob is signed with key id {key_id!r} but this codec has no "
                    "keys; pass that key in signing_keys"
                )
            key = self._keyring.get(key_id)
            if key is None:
                raise TamperedError(
                    f"blob is signed with key id {key_id!r}, which is not in this "
                    f"codec's keyring {list(self._keyring.key_ids)}; keep old keys until "
                    "their blobs expire"
                )
            expected = self._mac(key, signed_part)
            if not hmac.compare_digest(expected, data[end:]):
                raise TamperedError(
                    "HMAC does not verify: the blob was modified, signed with another key, "
                    "or is being read under another context than it was written for"
                )
            return tag, flags, key, header_size, payload
        if tag is LayerTag.PICKLE:
            raise UnsignedError("refusing an unsigned pickle blob: pickle loads only when signed")
        if self._keyring is not None and not self._allow_unsigned:
            raise UnsignedError(
                "blob is unsigned but this codec signs; pass allow_unsigned=True to read "
                "unsigned JSON/str blobs"
            )
        expected = hashlib.sha256(_UNSIGNED_PREFIX + signed_part).digest()
        if not hmac.compare_digest(expected, data[end:]):
            raise CorruptError(
                "checksum mismatch: the unsigned blob is corrupt or is being read under "
                "another context than it was written for"
            )
        return tag, flags, None, header_size, payload

    def decode(self, blob: bytes | bytearray | memoryview, context: bytes | str = b"") -> Any:
        """Verify and decode ``blob`` written under ``context``.

        A blob made by :meth:`encode_result` decodes to a :class:`SerializableAgentResult`.
        String-layer blobs decode to ``str``.

        Raises:
            CorruptError: not an envelope, truncated, malformed payload, or (unsigned blobs)
                checksum mismatch / wrong context.
            UnknownLayerError: the envelope names a layer this agentkit does not know.
            LayerNotAcceptedError: the layer is not in ``accept``.
            UnsignedError: a pickle blob without signature, or an unsigned blob read by a
                codec with keys (without ``allow_unsigned``).
            TamperedError: the HMAC does not verify (wrong key, context or bytes).
        """
        tag, flags, _key, _size, payload = self._open(blob, _context_bytes(context))
        if flags & _RESULT_FLAG:
            return self._load_result(tag, payload, SerializableAgentResult)
        return self._load(tag, payload)

    def decode_result(
        self,
        blob: bytes | bytearray | memoryview,
        context: bytes | str = b"",
        *,
        result_type: type[R] = SerializableAgentResult,  # type: ignore[assignment]
    ) -> R:
        """Verify and decode an agent result written by :meth:`encode_result`.

        Args:
            blob: the envelope.
            context: the context it was written under.
            result_type: the class to rebuild (the reader decides; the payload names none).

        Raises:
            CorruptError: as :meth:`decode`, or the blob does not hold an agent result.
            UnknownLayerError, LayerNotAcceptedError, UnsignedError, TamperedError: as
                :meth:`decode`.
        """
        if not (isinstance(result_type, type) and issubclass(result_type, SerializableAgentResult)):
            raise TypeError(
                f"result_type must be a SerializableAgentResult subclass, got {result_type!r}"
            )
        tag, flags, _key, _size, payload = self._open(blob, _context_bytes(context))
        if not flags & _RESULT_FLAG:
            raise CorruptError(
                "this blob holds a plain value, not an agent result; use decode() for it"
            )
        return self._load_result(tag, payload, result_type)

    def _load(self, tag: LayerTag, payload: bytes) -> Any:
        try:
            if tag is LayerTag.PICKLE:
                return pickle_layer.loads(
                    payload, full=self._full_pickle, allowed=self._pickle_globals
                )
            if tag is LayerTag.JSON:
                return json_layer.loads(payload)
            return str_layer.loads(payload)
        except Exception as exc:
            raise CorruptError(
                f"{tag.name.lower()} payload could not be decoded: {type(exc).__name__}: {exc}"
            ) from None

    def _load_result(self, tag: LayerTag, payload: bytes, cls: type[R]) -> R:
        # the string layer keeps a result's metadata exactly: its payload is tagged JSON
        body = self._load(LayerTag.JSON if tag is LayerTag.STR else tag, payload)
        try:
            if tag is LayerTag.PICKLE:
                fmt, meta, out = body
                if fmt != _RESULT_FORMAT or type(out) is not bytes:
                    raise ValueError(f"unsupported result payload format {fmt!r}")
                output = self._load(tag, out)
            else:
                if type(body) is not dict or body.get("f") != _RESULT_FORMAT:
                    raise ValueError("unsupported result payload format")
                meta, output = body["m"], body["o"]
            return cls._from_codec(meta, output)
        except CorruptError:
            raise
        except Exception as exc:
            raise CorruptError(
                f"result payload is malformed: {type(exc).__name__}: {exc}"
            ) from None
