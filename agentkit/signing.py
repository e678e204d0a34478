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
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from agentkit.codec import Codec
from agentkit.errors import ConfigurationError
from agentkit.keys import derive_key

__all__ = [
    "MIN_SIGNING_KEY_BYTES",
    "SIGNING_KEY_ENV",
    "build_codec",
    "codec_key_id",
    "codec_signing_key",
    "load_signing_key",
]

#: shortest root signing key accepted
MIN_SIGNING_KEY_BYTES = 16
#: environment variable holding the root signing key as hex
SIGNING_KEY_ENV = "AGENTKIT_SIGNING_KEY"


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


def load_signing_key(
    key_file: str | Path | None,
    *,
    create: bool = False,
    env: Mapping[str, str] = os.environ,
) -> bytes:
    """The deployment's root signing key: ``$AGENTKIT_SIGNING_KEY`` (hex) if set, else the
    hex key in ``key_file``.

    Args:
        key_file: a file holding the key as hex; ``None``: the environment variable only.
        create: write a new random 32-byte key to a missing ``key_file`` (mode 0600, never
            over an existing file).
        env: where to look for the variable.

    Raises:
        ConfigurationError: the key is not hex of at least 16 bytes, or there is no key
            (and ``create`` is false or there is no ``key_file``).
    """
    value = env.get(SIGNING_KEY_ENV)
    if value:
        return _parse_key(value, f"${SIGNING_KEY_ENV}")
    if key_file is None:
        raise ConfigurationError(
            f"no signing key: set {SIGNING_KEY_ENV} to the hex key the runs were written "
            "with, or give a key file"
        )
    path = Path(key_file)
    if path.exists():
        return _parse_key(path.read_text(), f"key file {str(path)!r}")
    if not create:
        raise ConfigurationError(
            f"no signing key: {str(path)!r} does not exist; set {SIGNING_KEY_ENV} or give "
            "the key file the runs were written with"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key


def _parse_key(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ConfigurationError(f"{where} must be a hex string (e.g. 64 hex digits)") from None
    if len(key) < MIN_SIGNING_KEY_BYTES:
        raise ConfigurationError(
            f"{where} must hold at least {MIN_SIGNING_KEY_BYTES} bytes "
            f"({2 * MIN_SIGNING_KEY_BYTES} hex digits)"
        )
    return key
