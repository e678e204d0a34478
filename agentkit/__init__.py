"""agentkit: run AI sub-agents safely for many users at once.

This module only re-exports; the implementation lives in small modules beside it.
Optional backends (``RedisCache``, ``PostgresStore``) import their drivers only when built;
the Dask executor lives in :mod:`agentkit.dask_executor` (extra ``agentkit[dask]``).
"""

from agentkit.agent import AgentContext, SubAgent
from agentkit.backends import (
    cache_from_url,
    register_cache,
    register_store,
    store_from_url,
)
from agentkit.cache.base import Cache
from agentkit.cache.memory import MemoryCache
from agentkit.cache.redis import RedisCache
from agentkit.codec import (
    BlobInfo,
    Codec,
    Keyring,
)
from agentkit.engine import UserExecutionEngine
from agentkit.errors import (
    AgentDefinitionError,
    AgentkitError,
    AgentkitRuntimeError,
    AgentNotOnWorkerError,
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
from agentkit.events import RunEvent
from agentkit.executor import (
    Executor,
    InProcessExecutor,
    StageJob,
    StageOutcome,
)
from agentkit.keys import UserHasher
from agentkit.limits import Limits
from agentkit.registry import AgentRegistry
from agentkit.report import (
    ReportEntry,
    ReportKind,
    ReportSummary,
    SanitizeReport,
)
from agentkit.result import ErrorInfo, SerializableAgentResult
from agentkit.run import RunHandle, RunResult
from agentkit.sanitizer import ObjectSanitizer, SanitizeContext
from agentkit.signing import build_codec, load_signing_key
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.base import Store
from agentkit.store.outbox import Outbox, OutboxStore
from agentkit.store.postgres import PostgresStore
from agentkit.store.records import (
    ResultRecord,
    RunRecord,
    StoredRun,
)
from agentkit.store.sqlite import SQLiteStore
from agentkit.supervisor import Supervisor
from agentkit.telemetry import Telemetry
from agentkit.telemetry import configure as configure_telemetry
from agentkit.validator import (
    PickleOffender,
    PickleReport,
    PickleValidator,
)

__version__ = "0.1.0"

__all__ = [
    "AgentContext",
    "AgentDefinitionError",
    "AgentNotOnWorkerError",
    "AgentRegistry",
    "AgentStatus",
    "AgentTimeoutError",
    "AgentkitError",
    "AgentkitRuntimeError",
    "BackendError",
    "BlobInfo",
    "Cache",
    "CacheError",
    "Codec",
    "CodecError",
    "ConfigurationError",
    "CorruptError",
    "DependencyCycleError",
    "DuplicateAgentError",
    "EncodeError",
    "ErrorInfo",
    "Executor",
    "InProcessExecutor",
    "InvalidPayloadError",
    "InvalidUserIdError",
    "Keyring",
    "LayerNotAcceptedError",
    "Limits",
    "MemoryCache",
    "MissingDependencyError",
    "MissingUpstreamError",
    "ObjectSanitizer",
    "Outbox",
    "OutboxStore",
    "PickleOffender",
    "PickleReport",
    "PickleValidator",
    "PipelineError",
    "PluginLoadError",
    "PostgresStore",
    "QueueFullError",
    "RedisCache",
    "ReportEntry",
    "ReportKind",
    "ReportSummary",
    "ResultRecord",
    "RunCancelledError",
    "RunEvent",
    "RunHandle",
    "RunNotFoundError",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "SQLiteStore",
    "SanitizeContext",
    "SanitizeReport",
    "SerializableAgentResult",
    "StageJob",
    "StageOutcome",
    "Store",
    "StoreError",
    "StoredRun",
    "SubAgent",
    "Supervisor",
    "SupervisorClosedError",
    "TamperedError",
    "Telemetry",
    "UnknownAgentError",
    "UnknownBackendError",
    "UnknownLayerError",
    "UnsignedError",
    "UsageError",
    "UserExecutionEngine",
    "UserHasher",
    "__version__",
    "build_codec",
    "cache_from_url",
    "configure_telemetry",
    "load_signing_key",
    "register_cache",
    "register_store",
    "store_from_url",
]
