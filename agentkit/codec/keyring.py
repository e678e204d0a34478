"""Signing keys for the codec: the newest key signs, every key verifies (rotation)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import TypeAlias

from agentkit.errors import ConfigurationError

__all__ = ["MIN_KEY_BYTES", "KeyInput", "Keyring"]

MIN_KEY_BYTES = 16
_KEY_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")

KeyInput: TypeAlias = "Keyring | bytes | Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None"


def _derived_id(key: bytes) -> str:
    # a short, stable id for a bare key; a truncated hash reveals nothing usable about it
    return "k" + hashlib.sha256(b"agentkit/key-id\x00" + key).hexdigest()[:8]


class Keyring:
    """An ordered set of ``(key id, key)`` pairs.

    The **last** key is the newest: it signs. Every key verifies, so rotating is: append the
    new key, deploy, and drop the old one once its blobs have expired.

    Args:
        keys: ``[(key_id, key), ...]`` oldest first, or ``{key_id: key}`` in the same order,
            or a single ``bytes`` key (its id is derived from a hash of the key).

    Raises:
        ConfigurationError: no keys, a key shorter than 16 bytes or not bytes, a key id that
            is not 1-64 characters of ``[A-Za-z0-9._-]``, or a duplicate key id.
    """

    __slots__ = ("_by_id", "_signing")

    def __init__(self, keys: bytes | Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> None:
        pairs: list[tuple[str, bytes]]
        if isinstance(keys, bytes | bytearray):
            pairs = [(_derived_id(bytes(keys)), bytes(keys))]
        elif isinstance(keys, Mapping):
            pairs = list(keys.items())
        elif isinstance(keys, str):
            raise ConfigurationError(
                "signing keys must be bytes, not str; pass key.encode() or, better, "
                "random bytes such as secrets.token_bytes(32)"
            )
        else:
            try:
                pairs = [(kid, key) for kid, key in keys]
            except (TypeError, ValueError):
                raise ConfigurationError(
                    "signing_keys must be bytes, a {key_id: key} mapping or a list of "
                    "(key_id, key) pairs"
                ) from None
        if not pairs:
            raise ConfigurationError("a keyring needs at least one signing key")
        by_id: dict[str, bytes] = {}
        for kid, key in pairs:
            if not isinstance(kid, str) or not _KEY_ID.match(kid):
                raise ConfigurationError(
                    f"key id {kid!r} is invalid: use 1-64 ASCII characters from [A-Za-z0-9._-]"
                )
            if not isinstance(key, bytes | bytearray):
                raise ConfigurationError(
                    f"key {kid!r} must be bytes, got {type(key).__name__}; use random bytes "
                    "such as secrets.token_bytes(32)"
                )
            if len(key) < MIN_KEY_BYTES:
                raise ConfigurationError(
                    f"key {kid!r} is {len(key)} bytes; signing keys must be at least "
                    f"{MIN_KEY_BYTES} bytes (32 random bytes recommended)"
                )
            if kid in by_id:
                raise ConfigurationError(f"key id {kid!r} appears twice in the keyring")
            by_id[kid] = bytes(key)
        self._by_id = by_id
        self._signing = pairs[-1][0]

    @classmethod
    def coerce(cls, keys: KeyInput) -> Keyring | None:
        """Return ``keys`` as a Keyring (``None`` stays ``None``)."""
        if keys is None or isinstance(keys, Keyring):
            return keys
        return cls(keys)

    @property
    def signing_key_id(self) -> str:
        """The id of the key that signs new blobs."""
        return self._signing

    @property
    def signing_key(self) -> bytes:
        """The key that signs new blobs."""
        return self._by_id[self._signing]

    @property
    def key_ids(self) -> tuple[str, ...]:
        """All key ids, oldest first."""
        return tuple(self._by_id)

    def get(self, key_id: str) -> bytes | None:
        """The key with ``key_id``, or ``None``."""
        return self._by_id.get(key_id)

    def __repr__(self) -> str:
        return f"Keyring(key_ids={list(self._by_id)!r}, signing={self._signing!r})"
