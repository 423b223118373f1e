"""Resilience: the circuit breaker, the fallback services and their factories.

- ``_breaker``: breaker with a call API, write journal, health loop
- ``_fallback``: :class:`FallbackSessionService`, :class:`FallbackMemoryService`, the factories
"""

from ._fallback import (
    FallbackMemoryService,
    FallbackSessionService,
    create_memory_service,
    create_session_service,
)

__all__ = [
    "FallbackMemoryService",
    "FallbackSessionService",
    "create_memory_service",
    "create_session_service",
]
