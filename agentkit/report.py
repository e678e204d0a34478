"""What the sanitizer changed: every replacement, truncation, cycle and redaction, with its path."""

from __future__ import annotations

from collections import Counter
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ReportEntry", "ReportKind", "ReportSummary", "SanitizeReport"]


class ReportKind(StrEnum):
    """Why a value in the output differs from the input."""

    REPLACED = "replaced"  #: a known live object became a typed placeholder
    SUMMARISED = "summarised"  #: an unknown object became a summary of its attributes
    TRUNCATED = "truncated"  #: a container, string or bytes value was cut to a budget
    CYCLE = "cycle"  #: a reference back to an ancestor became a cycle marker
    DEPTH = "depth"  #: nesting beyond max_depth was cut
    BUDGET = "budget"  #: the total node or byte budget ran out; the rest was cut
    REDACTED = "redacted"  #: a secret was replaced by a redaction marker
    ERROR = "error"  #: a known protocol raised; the value was replaced


#: kinds that lose information (everything but a pure structural rename)
LOSSY_KINDS = frozenset(ReportKind)


class ReportEntry(BaseModel):
    """One change, at one path (``$.summary.client``, ``$.items[3].b``)."""

    model_config = ConfigDict(frozen=True)

    path: str
    kind: ReportKind
    type: str = Field(description="qualified name of the original value's type")
    reason: str


class ReportSummary(BaseModel):
    """A bounded digest of a report, small enough to store with every result."""

    model_config = ConfigDict(frozen=True)

    lossy: bool = False
    counts: dict[str, int] = Field(default_factory=dict)
    total: int = 0
    entries: list[ReportEntry] = Field(default_factory=list)
    entries_dropped: int = 0


class SanitizeReport(BaseModel):
    """Everything the sanitizer changed, in walk order.

    ``entries`` is capped (``max_entries``); ``entries_dropped`` counts what did not fit, while
    ``counts`` always covers every change.
    """

    entries: list[ReportEntry] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    entries_dropped: int = 0
    max_entries: int = 10_000

    @property
    def lossy(self) -> bool:
        """True when the clean value differs from the input in any way."""
        return bool(self.counts)

    @property
    def total(self) -> int:
        """Number of changes, including entries dropped past ``max_entries``."""
        return sum(self.counts.values())

    @property
    def paths(self) -> list[str]:
        """The paths of the recorded entries, in walk order."""
        return [e.path for e in self.entries]

    def add(self, path: str, kind: ReportKind, type_name: str, reason: str) -> None:
        """Record one change."""
        self.counts[kind.value] = self.counts.get(kind.value, 0) + 1
        if len(self.entries) < self.max_entries:
            self.entries.append(ReportEntry(path=path, kind=kind, type=type_name, reason=reason))
        else:
            self.entries_dropped += 1

    def summary(self, max_entries: int = 50) -> ReportSummary:
        """A bounded digest for storing alongside a result."""
        shown = self.entries[:max_entries]
        return ReportSummary(
            lossy=self.lossy,
            counts=dict(Counter(self.counts)),
            total=self.total,
            entries=shown,
            entries_dropped=self.total - len(shown),
        )
