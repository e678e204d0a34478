"""Statuses of a stage result and of a whole run."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AgentStatus", "RunStatus"]


class AgentStatus(StrEnum):
    """Outcome of one stage (one agent) of a run."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  #: an upstream stage did not succeed
    INTERRUPTED = "interrupted"  #: the process stopped while the stage ran


class RunStatus(StrEnum):
    """Lifecycle of a run."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"  #: every stage succeeded
    FAILED = "failed"  #: at least one stage failed or timed out
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  #: the process stopped (crash or drain timeout) mid-run

    @property
    def is_terminal(self) -> bool:
        """True once the run will not change any more."""
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)
