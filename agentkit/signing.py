"""The codec a deployment derives from its root signing key.

Every process that reads or writes a deployment's results — Supervisors, Dask workers, tools
that inspect stored runs — must build the same :class:`~agentkit.codec.Codec` from the same
root key: the same derived sub-key, key id and layers. :func:`build_codec` is that one recipe.

Example:
    >>> codec = build_codec(b"a-root-key-of-at-least-16-bytes")
    >>> codec.signing_key_id == codec_key_id(codec_signing_key(b"a-root-key-of-at-least-16-bytes"))
    True
"""

from __future__ import annotations

import hashlib

from agentkit.codec import Codec
from agentkit.errors import ConfigurationError
from agentkit.keys import derive_key

__all__ = ["MIN_SIGNING_KEY_BYTES", "build_codec", "codec_key_id", "codec_signing_key"]

#: shortest root signing key accepted
MIN_SIGNING_KEY_BYTES = 16


def codec_signing_key(signing_key: bytes) -> bytes:
    """The codec's HMAC key derived from the root ``signing_key``.

    Raises:
        ConfigurationError: ``signing_key`` is not bytes of at least 16 bytes.
    """
    if not isinstance(signing_key, bytes) or len(signing_key) < MIN_SIGNING_KEY_BYTES:
        raise ConfigurationError(
            f"signing_key must be bytes of at least {MIN_SIGNING_KEY_BYTES} bytes"
        )
    return derive_key(signing_key, "codec")


def codec_key_id(codec_key: bytes) -> str:
    """The key id written into envelopes signed with ``codec_key`` (not secret)."""
    return "k" + hashlib.sha256(b"agentkit/key-id/" + codec_key).hexdigest()[:8]


def build_codec(signing_key: bytes | None) -> Codec:
    """The codec a :class:`~agentkit.Supervisor` builds from ``signing_key``.

    Args:
        signing_key: the deployment's root key (at least 16 bytes), or ``None``.

    Returns:
        With a key: a codec signing with the derived sub-key, all layers on (pickle, JSON,
        string). Without one: an unsigned codec writing JSON or string only (pickle is off,
        as unsigned pickles would be unsafe to load).

    Raises:
        ConfigurationError: ``signing_key`` is not ``None`` or bytes of at least 16 bytes.
    """
    if signing_key is None:
        return Codec(layers=("json", "str"))
    sub = codec_signing_key(signing_key)
    return Codec(signing_keys=[(codec_key_id(sub), sub)])
