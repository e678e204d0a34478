"""The one exception tree of agentkit.

Every error agentkit raises on purpose derives from :class:`AgentkitError`. User mistakes
(bad configuration, bad input, bad plugin code) and runtime failures (tampered bytes, full
queues, broken backends) live on separate branches, so callers can tell "fix your call" from
"retry or alert"::

    AgentkitError
    ├── UsageError                       you called agentkit wrongly: fix the call
    │   ├── ConfigurationError           bad option or object passed to a constructor
    │   │   ├── UnknownBackendError      URL scheme with no registered backend
    │   │   └── MissingDependencyError   optional extra not installed (says the pip line)
    │   ├── AgentDefinitionError         a SubAgent class or plugin is malformed
    │   │   ├── DuplicateAgentError      two agents registered under one name
    │   │   └── PluginLoadError          a plugin file or entry point failed to import
    │   ├── PipelineError                a pipeline cannot run as asked
    │   │   ├── UnknownAgentError        name not in the registry (lists the known ones)
    │   │   │   └── AgentNotOnWorkerError    a remote worker lacks the agent or its version
    │   │   ├── DependencyCycleError     depends_on forms a cycle (names it)
    │   │   └── MissingUpstreamError     depends_on names an agent not in the pipeline
    │   ├── InvalidUserIdError           empty, too long or non-printable user id
    │   └── InvalidPayloadError          a backend write got bytes the codec did not make
    └── AgentkitRuntimeError             something failed while running: retry, alert, inspect
        ├── CodecError                   bytes could not be encoded or decoded
        │   ├── EncodeError              no layer could encode the value
        │   ├── CorruptError             not an envelope, truncated or malformed
        │   ├── UnknownLayerError        envelope names a layer this codec does not know
        │   ├── LayerNotAcceptedError    layer known but not on the accept list
        │   ├── UnsignedError            signature required (pickle, or signing codec) but absent
        │   └── TamperedError            HMAC does not verify (wrong key, context or bytes)
        ├── BackendError                 a cache or store operation failed
        │   ├── CacheError
        │   └── StoreError
        ├── QueueFullError               per-user queue bound reached (backpressure)
        ├── SupervisorClosedError        submit after aclose() started
        ├── RunNotFoundError             no such run for this user
        ├── AgentTimeoutError            a stage exceeded its timeout or the run deadline
        └── RunCancelledError            the run was cancelled before it finished

Messages say what to do, not only what went wrong.
"""

from __future__ import annotations

__all__ = [
    "AgentDefinitionError",
    "AgentNotOnWorkerError",
    "AgentTimeoutError",
    "AgentkitError",
    "AgentkitRuntimeError",
    "BackendError",
    "CacheError",
    "CodecError",
    "ConfigurationError",
    "CorruptError",
    "DependencyCycleError",
    "DuplicateAgentError",
    "EncodeError",
    "InvalidPayloadError",
    "InvalidUserIdError",
    "LayerNotAcceptedError",
    "MissingDependencyError",
    "MissingUpstreamError",
    "PipelineError",
    "PluginLoadError",
    "QueueFullError",
    "RunCancelledError",
    "RunNotFoundError",
    "StoreError",
    "SupervisorClosedError",
    "TamperedError",
    "UnknownAgentError",
    "UnknownBackendError",
    "UnknownLayerError",
    "UnsignedError",
    "UsageError",
]


class AgentkitError(Exception):
    """Root of every error agentkit raises on purpose."""


# --- user mistakes -------------------------------------------------------------------------


class UsageError(AgentkitError, ValueError):
    """agentkit was called wrongly; the message says how to fix the call."""


class ConfigurationError(UsageError):
    """A constructor got an invalid option or object."""


class UnknownBackendError(ConfigurationError):
    """A backend URL uses a scheme no backend is registered for."""


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional extra is not installed; the message gives the exact pip line."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package!r} is required for this feature but is not installed; "
            f"install it with: pip install 'agentkit[{extra}]'"
        )
        self.package = package
        self.extra = extra


class AgentDefinitionError(UsageError):
    """A SubAgent subclass or plugin is malformed."""


class DuplicateAgentError(AgentDefinitionError):
    """Two agents were registered under the same name."""


class PluginLoadError(AgentDefinitionError):
    """A plugin file or entry point could not be imported."""


class PipelineError(UsageError):
    """A pipeline cannot run as asked."""


class UnknownAgentError(PipelineError):
    """A pipeline names an agent that is not registered."""


class AgentNotOnWorkerError(UnknownAgentError):
    """A remote worker (e.g. a Dask worker) has no plugin for the agent, or another version.

    The message names the agent and the worker; install the plugin on every worker (entry
    point, or a plugin folder in ``AGENTKIT_PLUGIN_PATH``) at the version the supervisor has.
    """


class DependencyCycleError(PipelineError):
    """The agents' ``depends_on`` form a cycle."""


class MissingUpstreamError(PipelineError):
    """An agent depends on another that is not part of the pipeline."""


class InvalidUserIdError(UsageError):
    """A user id is empty, too long, or contains non-printable characters."""


class InvalidPayloadError(UsageError, TypeError):
    """A backend write got something other than codec bytes of an agent result."""


# --- runtime failures ----------------------------------------------------------------------


class AgentkitRuntimeError(AgentkitError):
    """Something failed while running; retry, alert or inspect."""


class CodecError(AgentkitRuntimeError):
    """Bytes could not be encoded or decoded."""


class EncodeError(CodecError):
    """No enabled layer could encode the value."""


class CorruptError(CodecError):
    """The bytes are not an agentkit envelope, are truncated, or are malformed."""


class UnknownLayerError(CodecError):
    """The envelope names a layer this codec does not know."""


class LayerNotAcceptedError(CodecError):
    """The layer is known but not on this codec's accept list."""


class UnsignedError(CodecError):
    """A signature is required (pickle layer, or a codec with keys) but the blob has none."""


class TamperedError(CodecError):
    """The HMAC did not verify: wrong key, wrong context, or modified bytes."""


class BackendError(AgentkitRuntimeError):
    """A cache or store operation failed."""


class CacheError(BackendError):
    """A cache operation failed."""


class StoreError(BackendError):
    """A store operation failed."""


class QueueFullError(AgentkitRuntimeError):
    """The user's queue is at its bound; retry later (backpressure)."""


class SupervisorClosedError(AgentkitRuntimeError):
    """The supervisor is closing or closed and accepts no new runs."""


class RunNotFoundError(AgentkitRuntimeError, LookupError):
    """No run with this id exists for this user."""


class AgentTimeoutError(AgentkitRuntimeError, TimeoutError):
    """A stage exceeded its timeout or the run's deadline."""


class RunCancelledError(AgentkitRuntimeError):
    """The run was cancelled before it finished."""
