"""Keyed hashing of user ids and the layout of cache keys.

Raw user ids never appear in cache keys, logs or spans: they appear as a keyed hash
(HMAC-SHA256 under a key derived from the supervisor's signing key), so keys from different
deployments never collide and cannot be reversed by guessing ids.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from agentkit.errors import ConfigurationError, InvalidUserIdError

__all__ = ["MAX_USER_ID_LENGTH", "UserHasher", "cache_key", "derive_key", "validate_user_id"]

MAX_USER_ID_LENGTH = 256
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]+$")
_KEY_PART = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


def derive_key(root: bytes, purpose: str) -> bytes:
    """Derive an independent sub-key for ``purpose`` from ``root``."""
    return hmac.new(root, b"agentkit/" + purpose.encode(), hashlib.sha256).digest()


def validate_user_id(user_id: object) -> str:
    """Return ``user_id`` if it is a usable user id.

    Raises:
        InvalidUserIdError: not a non-empty printable string of at most 256 characters.
    """
    if not isinstance(user_id, str):
        raise InvalidUserIdError(f"user_id must be a str, got {type(user_id).__name__}")
    if not user_id or user_id.strip() != user_id:
        raise InvalidUserIdError(
            "user_id must be a non-empty string without leading or trailing whitespace"
        )
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise InvalidUserIdError(
            f"user_id is {len(user_id)} characters; the limit is {MAX_USER_ID_LENGTH}"
        )
    if not _PRINTABLE.match(user_id):
        raise InvalidUserIdError("user_id must not contain control characters")
    return user_id


class UserHasher:
    """Keyed, stable hash of user ids: the only form of a user id in keys, logs and spans.

    Args:
        key: at least 16 bytes. With ``None`` a random per-process key is used: hashes are
            then stable only within this process (fine for a memory cache, not for a shared one).
    """

    __slots__ = ("_key", "ephemeral")

    def __init__(self, key: bytes | None = None) -> None:
        if key is not None and (not isinstance(key, bytes) or len(key) < 16):
            raise ConfigurationError("the user-hash key must be bytes of at least 16 bytes")
        self.ephemeral = key is None
        self._key = key if key is not None else secrets.token_bytes(32)

    def hash(self, user_id: str) -> str:
        """The keyed hash of ``user_id`` as 32 hex characters."""
        return hmac.new(self._key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def __repr__(self) -> str:
        return f"UserHasher(ephemeral={self.ephemeral})"


def cache_key(namespace: str, user_hash: str, *parts: str) -> str:
    """Build ``{namespace}:u:{user_hash}:{part}:{part}…``; parts are validated, not escaped."""
    for p in (namespace, user_hash, *parts):
        if not _KEY_PART.match(p):
            raise ConfigurationError(f"cache key part {p!r} must match [A-Za-z0-9_.-]{{1,128}}")
    return ":".join((namespace, "u", user_hash, *parts))
