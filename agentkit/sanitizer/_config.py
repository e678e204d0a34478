"""The sanitizer's options, validated once and shared read-only by every walk."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from agentkit.errors import ConfigurationError
from agentkit.sanitizer.redact import DEFAULT_SECRET_KEYS, SecretMatcher

UnknownPolicy = Literal["summarise", "placeholder"]

#: the deepest max_depth allowed: the clean output must itself stay picklable
MAX_DEPTH_LIMIT = 400


@dataclass(frozen=True, slots=True)
class SanitizeContext:
    """What a registered handler is told about the value it replaces.

    Attributes:
        path: where the value sits, in ``$.a[3].b`` form.
        depth: nesting depth of the value (the root is 0).
        type_name: qualified name of the value's type.
    """

    path: str
    depth: int
    type_name: str


Handler = Callable[[Any, SanitizeContext], Any]


@dataclass(slots=True)
class Config:
    """Validated options (see :class:`~agentkit.sanitizer.ObjectSanitizer` for their meaning)."""

    max_depth: int = 64
    max_items: int = 100_000
    max_str_len: int = 1_000_000
    max_bytes_len: int = 10_000_000
    max_nodes: int = 1_000_000
    max_total_bytes: int = 64 * 1024 * 1024
    max_report_entries: int = 10_000
    unknown: UnknownPolicy = "summarise"
    keep_picklable: bool = False
    secret_keys: tuple[str, ...] = DEFAULT_SECRET_KEYS
    redact_urls: bool = True
    fast_path: bool = True
    matcher: SecretMatcher = field(init=False)
    handlers: dict[int, tuple[type, Handler]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (
            "max_depth",
            "max_items",
            "max_str_len",
            "max_bytes_len",
            "max_nodes",
            "max_total_bytes",
            "max_report_entries",
        ):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigurationError(f"{name} must be a positive int, got {value!r}")
        if self.max_depth > MAX_DEPTH_LIMIT:
            raise ConfigurationError(
                f"max_depth={self.max_depth} is above {MAX_DEPTH_LIMIT}; the clean output must "
                "stay picklable, so pass a smaller max_depth"
            )
        if self.unknown not in ("summarise", "placeholder"):
            raise ConfigurationError(
                f"unknown={self.unknown!r}; use 'summarise' (type and attributes) or "
                "'placeholder' (type only)"
            )
        keys: Iterable[str] = self.secret_keys
        if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
            raise ConfigurationError("secret_keys must be an iterable of strings")
        self.secret_keys = tuple(keys)
        self.matcher = SecretMatcher(self.secret_keys)

    @property
    def fast_limit(self) -> int:
        """Pickled size up to which a native pass proves every size budget holds.

        Every string character, bytes byte, container item and node costs at least one byte
        of pickle, so a pickle no larger than the smallest budget cannot exceed any of them.
        """
        return min(
            self.max_items,
            self.max_str_len,
            self.max_bytes_len,
            self.max_nodes,
            self.max_total_bytes,
        )
