"""The design document's application API: :func:`get_session_store` and friends, :class:`SessionStore`.

- ``_api``: get_config, create_session_store, the process-wide store, the module-level functions
- ``_store``: :class:`SessionStore` (owner checks, append retries, session cap, cleanup, sync/async)
- ``_loop``: the store's loop thread; ``_records``: record shapes and input checks
- ``_backends``: the Redis and local backends
- ``_fallback``: the fallback backend (Redis, local while it is unreachable)
"""

from ..errors import SessionAccessError, SessionLimitError, UnknownSessionError
from ._api import (
    AppConfig,
    SessionStore,
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
from ._backends import SessionStoreConfig

__all__ = [
    "AppConfig",
    "SessionAccessError",
    "SessionLimitError",
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
]
