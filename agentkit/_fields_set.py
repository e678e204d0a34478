"""One read-only ``__pydantic_fields_set__`` shared by every model built with all its fields.

Models the engine builds by the thousand (stage results, run records) set every field, so they
can share one fields set instead of each holding a set of its own: one object fewer per model
for the garbage collector to track and traverse while runs are in flight. Pydantic only ever
mutates a copy (``model_copy`` and ``copy`` go through ``__copy__``, which gives a plain set),
and frozen models never add to it; any other mutation raises instead of touching every model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

__all__ = ["SharedFieldsSet"]


class SharedFieldsSet(set[str]):
    """A set of field names that refuses changes; copies are plain, mutable sets."""

    __slots__ = ()

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__(names)

    def _refuse(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        raise TypeError(
            "this fields set is shared by many models and cannot change; "
            "change a copy instead (set(model.model_fields_set))"
        )

    add = discard = remove = pop = clear = _refuse
    update = difference_update = intersection_update = symmetric_difference_update = _refuse
    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse

    def __copy__(self) -> set[str]:
        return set(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> set[str]:
        return set(self)

    def __reduce__(self) -> tuple[type[set[str]], tuple[list[str]]]:
        return set, (list(self),)
