from collections.abc import Callable
from typing import Any

class Encoder:
    def __init__(
        self,
        limits: tuple[int, int, int, int, int, int],
        redact_urls: bool,
        allowed: int,
        classes: tuple[type, ...],
        names: tuple[tuple[str, str], ...],
        secret_cache: dict[str, bool],
        is_secret: Callable[[str], bool],
        numeric_only: Callable[[Any], bool],
        url_redact: Callable[[str], str | None],
    ) -> None: ...
    def encode(
        self, obj: Any, on_other: Callable[..., tuple[Any, int, int]] | None, /
    ) -> tuple[Any, bytes, list[Any] | None] | None: ...
