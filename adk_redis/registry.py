"""Register adk_redis with ADK's service registry (``adk web`` / ``adk api_server`` URIs).

After :func:`register`, ``--session_service_uri`` and ``--memory_service_uri``
accept ``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://``,
``rediss+cluster://`` and ``redis+sentinel://`` URLs.  Two query parameters
are consumed here and never reach redis-py: ``key_prefix`` (overrides
``REDIS_KEY_PREFIX``) and, for sessions, ``session_ttl_hours``.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from google.adk.cli.service_registry import ServiceRegistry, get_service_registry
from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.sessions.base_session_service import BaseSessionService

from .config import ConfigurationError
from .connection import SUPPORTED_SCHEMES

logger = logging.getLogger("adk_redis.registry")

SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel")
"""URI schemes :func:`register` claims for both session and memory services."""

_OUR_PARAMS = {"key_prefix", "session_ttl_hours", "stale_policy"}


def split_uri(uri: str) -> tuple[str, dict[str, str]]:
    """Remove adk_redis' own query parameters from ``uri``; return (clean uri, params)."""
    parts = urlsplit(uri)
    ours: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in _OUR_PARAMS:
            ours[key] = value
        else:
            rest.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(rest))), ours


def _check_scheme(uri: str, kind: str) -> None:
    scheme = urlsplit(uri).scheme
    if scheme not in SUPPORTED_SCHEMES:
        raise ConfigurationError(
            f"{scheme}:// is not supported by the adk_redis {kind} service yet; "
            f"use one of {', '.join(s + '://' for s in SUPPORTED_SCHEMES)}"
        )


def _accepted(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keep the keyword arguments ``cls`` accepts (ADK may pass extras such as session_db_kwargs)."""
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    dropped = sorted(set(kwargs) - set(params))
    if dropped:
        logger.warning("%s ignores unsupported arguments: %s", cls.__name__, ", ".join(dropped))
    return {k: v for k, v in kwargs.items() if k in params}


def session_factory(uri: str, **kwargs: Any) -> BaseSessionService:
    """ADK service-registry factory building a :class:`RedisSessionService`."""
    from .session_service import RedisSessionService

    _check_scheme(uri, "session")
    clean, params = split_uri(uri)
    if "key_prefix" in params:
        kwargs["key_prefix"] = params["key_prefix"]
    if params.get("session_ttl_hours"):
        try:
            kwargs["session_ttl_hours"] = float(params["session_ttl_hours"])
        except ValueError:
            raise ConfigurationError(
                f"session_ttl_hours in the session service URI must be a number, "
                f"got {params['session_ttl_hours']!r}"
            ) from None
    if "stale_policy" in params:
        kwargs["stale_policy"] = params["stale_policy"]  # validated by the settings model
    return RedisSessionService(clean, **_accepted(RedisSessionService, kwargs))



def memory_factory(uri: str, **kwargs: Any) -> BaseMemoryService:
    """ADK service-registry factory building a ``RedisMemoryService``."""
    from .memory_service import RedisMemoryService

    _check_scheme(uri, "memory")
    clean, params = split_uri(uri)
    if "key_prefix" in params:
        kwargs["key_prefix"] = params["key_prefix"]
    service: BaseMemoryService = RedisMemoryService(clean, **_accepted(RedisMemoryService, kwargs))
    return service


def register(registry: ServiceRegistry | None = None) -> ServiceRegistry:
    """Register adk_redis' session and memory factories for every Redis URI scheme.

    Uses ADK's global registry by default.  Call it after ADK has built its
    registry (``get_service_registry()`` does that first), so these factories
    replace any built-in ``redis`` handler.  Idempotent.
    """
    registry = registry if registry is not None else get_service_registry()
    for scheme in SCHEMES:
        registry.register_session_service(scheme, session_factory)
        registry.register_memory_service(scheme, memory_factory)
    return registry
