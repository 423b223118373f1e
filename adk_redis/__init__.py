"""adk_redis: Redis persistence for Google's Agent Development Kit (ADK)."""

from __future__ import annotations

from .config import ConfigurationError, RedisSettings, load_settings
from .cross_session import CrossSessionMemory
from .embeddings import Embedder, GenAIEmbedder, HashingEmbedder, SentenceTransformerEmbedder
from .errors import AdkRedisError, CorruptedDataError, InvalidCursorError, RedisUnavailableError
from .facade import (
    SessionAccessError,
    SessionStore,
    SessionStoreConfig,
    UnknownSessionError,
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
from .fallback import (
    FallbackMemoryService,
    FallbackSessionService,
    create_memory_service,
    create_session_service,
)
from .keys import KeySchema
from .memory_service import RedisMemoryService
from .registry import register
from .session_pages import SessionPage
from .session_service import RedisSessionService

__all__ = [
    "SessionAccessError",
    "SessionStore",
    "SessionStoreConfig",
    "UnknownSessionError",
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
    "AdkRedisError",
    "CrossSessionMemory",
    "Embedder",
    "GenAIEmbedder",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "FallbackMemoryService",
    "FallbackSessionService",
    "create_memory_service",
    "create_session_service",
    "RedisMemoryService",
    "ConfigurationError",
    "CorruptedDataError",
    "InvalidCursorError",
    "KeySchema",
    "RedisSessionService",
    "SessionPage",
    "RedisSettings",
    "RedisUnavailableError",
    "load_settings",
    "register",
]
__version__ = "0.1.0"
