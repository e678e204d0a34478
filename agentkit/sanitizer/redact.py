"""Secret redaction: secret-looking keys, pydantic secrets and credentials inside URLs."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["DEFAULT_SECRET_KEYS", "REDACTED", "SecretMatcher"]

#: what a redacted value becomes
REDACTED = "***"

#: key fragments that mark a value as secret (matched case-insensitively, as a substring of
#: the key with everything but letters and digits removed)
DEFAULT_SECRET_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "cookie",
    "credential",
    "privatekey",
)

_NON_ALNUM = re.compile(r"[^0-9A-Za-z]+")
# scheme://user:password@  (user may be empty: redis://:password@host)
_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/?#]*):([^\s@/?#]+)@")
_NON_ALNUM_BYTES = bytes(
    b for b in range(256) if not (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122)
)
_LOWER = bytes.maketrans(bytes(range(65, 91)), bytes(range(97, 123)))
_URL_CREDENTIALS_BYTES = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/?#]*:[^\s@/?#]+@")


def normalise_key(key: str) -> str:
    """Keep only ASCII letters and digits, lower-cased (``API-Key`` -> ``apikey``)."""
    return _NON_ALNUM.sub("", key).lower()


class SecretMatcher:
    """Decides which keys are secret and strips credentials from URL strings.

    Args:
        keys: key fragments; a key is secret when its normalised form contains one of them.
    """

    __slots__ = ("_cache", "_fragments", "_scan")

    _scan: tuple[bytes, ...]

    def __init__(self, keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> None:
        fragments = tuple(sorted({normalise_key(k) for k in keys if normalise_key(k)}))
        self._fragments = fragments
        self._cache: dict[str, bool] = {}
        self._scan = tuple(f.encode() for f in fragments)

    @property
    def fragments(self) -> tuple[str, ...]:
        """The normalised key fragments in use."""
        return self._fragments

    def is_secret_key(self, key: str) -> bool:
        """True when ``key`` looks like it names a secret."""
        hit = self._cache.get(key)
        if hit is None:
            norm = normalise_key(key)
            hit = any(f in norm for f in self._fragments)
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def might_contain_secret_key(self, data: bytes) -> bool:
        """Cheap native over-approximation: could any string in ``data`` be a secret key?

        ``data`` is UTF-8 text or a pickle of it. Like :func:`normalise_key`, this lower-cases
        ASCII and drops every byte that is not an ASCII letter or digit (gluing neighbouring
        strings together only adds false hits), then looks for each fragment.
        """
        if not self._scan:
            return False
        flat = data.translate(_LOWER, _NON_ALNUM_BYTES)  # one pass: delete, then lower
        for fragment in self._scan:  # noqa: SIM110 - a plain loop is faster here
            if fragment in flat:
                return True
        return False

    @staticmethod
    def might_contain_url_credentials(data: bytes) -> bool:
        """Cheap native over-approximation for URL credentials in raw bytes."""
        return b"://" in data and _URL_CREDENTIALS_BYTES.search(data) is not None

    @staticmethod
    def redact_url_credentials(text: str) -> str | None:
        """``redis://user:pass@host`` -> ``redis://user:***@host``; None when nothing changed."""
        if "://" not in text:
            return None
        new, n = _URL_CREDENTIALS.subn(r"\1:" + REDACTED + "@", text)
        return new if n and new != text else None
