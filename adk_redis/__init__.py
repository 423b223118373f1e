"""adk_redis: Redis persistence for Google's Agent Development Kit (ADK).

Packages by concern: :mod:`adk_redis.sessions`, :mod:`adk_redis.memory`, :mod:`adk_redis.resilience`
(fallback services), :mod:`adk_redis.store` (the design document's application API),
:mod:`adk_redis.admin` (the ``adk-redis`` CLI); public modules :mod:`adk_redis.config`,
:mod:`adk_redis.errors`, :mod:`adk_redis.keys`, :mod:`adk_redis.security`, :mod:`adk_redis.registry`,
:mod:`adk_redis.telemetry`, :mod:`adk_redis.testing`.
"""

from . import _compat
from .config import RedisSettings, load_settings
from .errors import (
    AccessRefusedError,
    AdkRedisError,
    ConfigurationError,
    CorruptedDataError,
    DurabilityError,
    InvalidCursorError,
    InvalidInputError,
    InvalidSessionIdError,
    MergeConflictError,
    RedisOutcomeUnknownError,
    RedisOutOfMemoryError,
    RedisPermissionError,
    RedisUnavailableError,
    SessionAccessError,
    SessionLimitError,
    UnknownSessionError,
)
from .keys import KeySchema
from .memory import (
    CrossSessionMemory,
    Embedder,
    GenAIEmbedder,
    HashingEmbedder,
    RedisMemoryService,
    SentenceTransformerEmbedder,
)
from .registry import install_error_handlers, register
from .resilience import (
    FallbackMemoryService,
    FallbackSessionService,
    create_memory_service,
    create_session_service,
)
from .sessions import RedisSessionService, SessionPage

# The design document's examples import these from the top level; the rest of that API
# (SessionStore, AppConfig, ...) lives in adk_redis.store.
from .store import (
    SessionStoreConfig,
    create_session_store,
    get_agent_memory,
    get_config,
    get_session_history,
    get_session_store,
    get_session_store_stats,
    get_user_context,
    shutdown_session_store,
    store_agent_memory,
    store_user_context,
)

__all__ = [
    # services
    "RedisSessionService",
    "RedisMemoryService",
    "CrossSessionMemory",
    "SessionPage",
    "KeySchema",
    # embedders
    "Embedder",
    "GenAIEmbedder",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    # fallback services and factories
    "FallbackMemoryService",
    "FallbackSessionService",
    "create_memory_service",
    "create_session_service",
    # settings
    "RedisSettings",
    "load_settings",
    # ADK's service registry hook
    "install_error_handlers",
    "register",
    # errors
    "AdkRedisError",
    "AccessRefusedError",
    "ConfigurationError",
    "CorruptedDataError",
    "DurabilityError",
    "InvalidCursorError",
    "InvalidInputError",
    "InvalidSessionIdError",
    "MergeConflictError",
    "RedisOutcomeUnknownError",
    "RedisOutOfMemoryError",
    "RedisPermissionError",
    "RedisUnavailableError",
    "SessionAccessError",
    "SessionLimitError",
    "UnknownSessionError",
    # the design document's application API (the rest: adk_redis.store)
    "SessionStoreConfig",
    "create_session_store",
    "get_agent_memory",
    "get_config",
    "get_session_history",
    "get_session_store",
    "get_session_store_stats",
    "get_user_context",
    "shutdown_session_store",
    "store_agent_memory",
    "store_user_context",
]
__version__ = "0.1.0"

_compat.install()  # the import paths of before the move (adk_redis.session_service, ...): one more release
