"""agentkit: run AI sub-agents safely for many users at once.

This module only re-exports; the implementation lives in small modules beside it.
"""

from agentkit.backends import cache_from_url, register_cache, register_store, store_from_url
from agentkit.cache.base import Cache
from agentkit.errors import (
    AgentDefinitionError,
    AgentkitError,
    AgentkitRuntimeError,
    AgentTimeoutError,
    BackendError,
    CacheError,
    CodecError,
    ConfigurationError,
    CorruptError,
    DependencyCycleError,
    DuplicateAgentError,
    EncodeError,
    InvalidPayloadError,
    InvalidUserIdError,
    LayerNotAcceptedError,
    MissingDependencyError,
    MissingUpstreamError,
    PipelineError,
    PluginLoadError,
    QueueFullError,
    RunCancelledError,
    RunNotFoundError,
    StoreError,
    SupervisorClosedError,
    TamperedError,
    UnknownAgentError,
    UnknownBackendError,
    UnknownLayerError,
    UnsignedError,
    UsageError,
)
from agentkit.report import ReportEntry, ReportKind, SanitizeReport
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.base import Store
from agentkit.store.records import ResultRecord, RunRecord, StoredRun

__version__ = "0.1.0"

__all__ = [
    "AgentDefinitionError",
    "AgentStatus",
    "AgentTimeoutError",
    "AgentkitError",
    "AgentkitRuntimeError",
    "BackendError",
    "Cache",
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
    "ReportEntry",
    "ReportKind",
    "ResultRecord",
    "RunCancelledError",
    "RunNotFoundError",
    "RunRecord",
    "RunStatus",
    "SanitizeReport",
    "Store",
    "StoreError",
    "StoredRun",
    "SupervisorClosedError",
    "TamperedError",
    "UnknownAgentError",
    "UnknownBackendError",
    "UnknownLayerError",
    "UnsignedError",
    "UsageError",
    "__version__",
    "cache_from_url",
    "register_cache",
    "register_store",
    "store_from_url",
]
