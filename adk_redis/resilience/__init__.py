"""Resilience: the circuit breaker, the fallback services and their factories.

- ``_breaker``: breaker with a call API, write journal, health loop
- ``_fallback``: :class:`FallbackSessionService`, :class:`FallbackMemoryService`, the factories
- ``_conflicts``: write-back conflicts (:class:`WriteBackConflict`), held up to a cap, then spilled
"""

from ._conflicts import ConflictLog, WriteBackConflict
from ._fallback import (
    FallbackMemoryService,
    FallbackSessionService,
    create_memory_service,
    create_session_service,
)

__all__ = [
    "ConflictLog",
    "FallbackMemoryService",
    "FallbackSessionService",
    "WriteBackConflict",
    "create_memory_service",
    "create_session_service",
]
