"""Register adk_redis with ADK's service registry (``adk web`` / ``adk api_server`` URIs).

After :func:`register`, ``--session_service_uri`` and ``--memory_service_uri``
accept ``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://``,
``rediss+cluster://`` and ``redis+sentinel://`` URLs, checked strictly by
:func:`adk_redis._core.url.parse_redis_url` (a malformed URI stops ``adk web`` /
``adk api_server`` with one line).  These query parameters are consumed here
and never reach redis-py: ``key_prefix`` (overrides ``REDIS_KEY_PREFIX``);
for sessions, ``session_ttl_hours`` and ``stale_policy``; for memory, ``search_limit``
and ``min_score`` (each factory accepts and ignores the other's, so one URI serves
both).  When the server does not
answer at start-up, one warning names the (redacted) URL.

:func:`register` also makes the FastAPI apps ADK builds (``adk api_server``, ``adk web``,
``get_fast_api_app``) answer a request that Redis could not serve with ``503 Service Unavailable``
and one line (``{"detail": "Redis at redis://host:6379 is unavailable (...): ..."}``) instead of a
500 with redis-py's text: :func:`install_error_handlers`, which an application building its own
FastAPI app can call itself.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import click
from google.adk.cli.service_registry import ServiceRegistry, get_service_registry
from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.sessions.base_session_service import BaseSessionService

from ._core.url import SCHEMES, RedisURL, parse_redis_url
from .errors import AdkRedisError, ConfigurationError, RedisUnavailableError

logger = logging.getLogger("adk_redis.registry")

__all__ = [
    "SCHEMES",
    "install_error_handlers",
    "memory_factory",
    "register",
    "session_factory",
    "split_uri",
]

# SCHEMES: the URI schemes register() claims for both session and memory services (adk_redis._core.url).


def split_uri(uri: str) -> tuple[str, dict[str, str]]:
    """Check ``uri`` strictly; return (the URL redis-py gets, adk_redis' own params).

    Raises:
      ConfigurationError: naming the offending part of the URL (password redacted).
    """
    checked = parse_redis_url(uri)
    return checked.client_url, dict(checked.ours)


class _CliConfigurationError(AdkRedisError, click.ClickException):
    """A malformed URI under ``adk web`` / ``adk api_server``: click prints it as one line, exit code 2.

    Deliberately *not* a ``ValueError`` (unlike :class:`ConfigurationError`): ADK's ``fast_api.py``
    catches ``ValueError`` from the memory factory and re-raises a plain ``click.ClickException``
    (exit code 1), so a malformed ``--memory_service_uri`` would exit 1 where the same
    ``--session_service_uri`` exits 2.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        AdkRedisError.__init__(self, message)
        click.ClickException.__init__(self, message)


def _parse(uri: str) -> RedisURL:
    """:func:`parse_redis_url`; under a running click command (the adk CLI) its error prints as one line."""
    try:
        return parse_redis_url(uri)
    except ConfigurationError as exc:
        if click.get_current_context(silent=True) is None:
            raise
        raise _CliConfigurationError(str(exc)) from None


def _accepted(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keep the keyword arguments ``cls`` accepts (ADK may pass extras such as session_db_kwargs)."""
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    dropped = sorted(set(kwargs) - set(params))
    if dropped:
        logger.warning("%s ignores unsupported arguments: %s", cls.__name__, ", ".join(dropped))
    return {k: v for k, v in kwargs.items() if k in params}


def probe(checked: RedisURL, timeout: float = 1.0) -> str | None:
    """PING the server of ``checked`` once, synchronously; None when it answers, else why not.

    Start-up only (the registry's factories): a cluster URL pings its seed node,
    a sentinel URL its first sentinel.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    url = checked.client_url.replace("+cluster", "", 1)
    if checked.scheme == "redis+sentinel":
        host, port = checked.hosts[0]
        url = f"redis://{host}:{port}"
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
    except (ValueError, TypeError) as exc:  # pragma: no cover - the URL was checked above
        return str(exc)
    try:
        client.ping()
    except Exception as exc:
        from ._core.connection import auth_problem, unavailable_kind

        auth = auth_problem(exc)
        if auth is not None:
            return auth
        found = unavailable_kind(exc)  # the one definition of "unavailable" (adk_redis.connection)
        if found is not None:
            return found[1]
        if "NOPERM" in str(exc):
            return None  # it answered; this ACL user may just not PING
        if isinstance(exc, (redis.exceptions.RedisError, OSError)):
            return f"it answered with an error: {exc}"  # e.g. a database number it does not have
        raise
    finally:
        client.close()
    return None


def _warn_if_down(checked: RedisURL, kind: str) -> None:
    why = probe(checked)
    if why is not None:
        logger.warning(
            "adk_redis %s service: Redis at %s does not answer (%s); requests fail until it does",
            kind,
            checked.redacted,
            why,
        )


def session_factory(uri: str, **kwargs: Any) -> BaseSessionService:
    """ADK service-registry factory building a :class:`RedisSessionService`.

    Raises:
      ConfigurationError: a malformed URI (``adk web`` / ``adk api_server`` refuse to start).
    """
    from .sessions._service import RedisSessionService

    checked = _parse(uri)
    params = checked.ours
    if "key_prefix" in params:
        kwargs["key_prefix"] = params["key_prefix"]
    ttl = params.get("session_ttl_hours", "").strip().lower()
    if ttl and ttl not in ("none", "0"):
        kwargs["session_ttl_hours"] = float(ttl)  # checked by parse_redis_url
    if "stale_policy" in params:
        kwargs["stale_policy"] = params["stale_policy"]
    service = RedisSessionService(checked.client_url, **_accepted(RedisSessionService, kwargs))
    _warn_if_down(checked, "session")
    return service


def memory_factory(uri: str, **kwargs: Any) -> BaseMemoryService:
    """ADK service-registry factory building a ``RedisMemoryService``.

    Raises:
      ConfigurationError: a malformed URI.
    """
    from .memory._service import RedisMemoryService

    checked = _parse(uri)  # session_ttl_hours / stale_policy: the same URI serves both
    params = checked.ours
    if "key_prefix" in params:
        kwargs["key_prefix"] = params["key_prefix"]
    if "search_limit" in params:
        kwargs["search_limit"] = int(params["search_limit"])  # checked by parse_redis_url
    if "min_score" in params:
        kwargs["min_score"] = float(params["min_score"])
    if "generator_model" in params:  # memory generation (adk_redis.memory.MemoryGenerator)
        kwargs["generator"] = params["generator_model"]
    if "search_kinds" in params:
        kwargs["search_kinds"] = params["search_kinds"]
    service: BaseMemoryService = RedisMemoryService(
        checked.client_url, **_accepted(RedisMemoryService, kwargs)
    )
    _warn_if_down(checked, "memory")
    return service


def _unavailable_cause(exc: BaseException) -> RedisUnavailableError | None:
    """The :class:`RedisUnavailableError` ``exc`` is or wraps (ADK re-raises errors as HTTPException)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, RedisUnavailableError):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _auth_cause(exc: BaseException) -> str | None:
    """The one line of the authentication failure ``exc`` is or wraps (a wrong or missing password)."""
    from redis.exceptions import RedisError

    from ._core.connection import auth_problem

    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, RedisError):
            line = auth_problem(current)
            if line is not None:
                return line
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def install_error_handlers(app: Any) -> Any:
    """Make FastAPI ``app`` answer requests Redis could not serve with 503 and one line.

    A :class:`~adk_redis.errors.RedisUnavailableError` (or a ``RedisOutcomeUnknownError``) or an
    authentication failure (redis-py's ``AuthenticationError``: no password for a server that needs one,
    a wrong one) raised by a route, or wrapped by ADK's routes in an ``HTTPException(500)``, becomes
    ``503`` with ``{"detail": "<one line>"}`` (``Retry-After: 1`` for an outage); every other error keeps
    FastAPI's handling.  Idempotent; returns ``app``.
    """
    if getattr(app.state, "adk_redis_handlers", False):
        return app
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    def unavailable(error: RedisUnavailableError) -> Any:
        line = " ".join(str(error).split())  # one line, whatever redis-py put in it
        return JSONResponse({"detail": line}, status_code=503, headers={"Retry-After": "1"})

    async def on_unavailable(request: Any, exc: Exception) -> Any:
        return unavailable(exc)  # type: ignore[arg-type]

    async def on_auth(request: Any, exc: Exception) -> Any:
        line = _auth_cause(exc) or f"authentication failed: {' '.join(str(exc).split())}"
        return JSONResponse({"detail": line}, status_code=503)

    async def on_http(request: Any, exc: Exception) -> Any:
        if getattr(exc, "status_code", None) == 500:
            cause = _unavailable_cause(exc)
            if cause is not None:
                return unavailable(cause)
            auth = _auth_cause(exc)
            if auth is not None:
                return JSONResponse({"detail": auth}, status_code=503)
        return await http_exception_handler(request, exc)  # type: ignore[arg-type]

    from redis.exceptions import AuthenticationError

    app.add_exception_handler(RedisUnavailableError, on_unavailable)
    app.add_exception_handler(AuthenticationError, on_auth)
    app.add_exception_handler(HTTPException, on_http)
    app.state.adk_redis_handlers = True
    return app


def _hook_adk_apps() -> None:
    """Install :func:`install_error_handlers` on every FastAPI app ADK's ``ApiServer`` builds (once)."""
    try:
        from google.adk.cli.api_server import ApiServer
    except ImportError:  # pragma: no cover - ADK without its web server
        return
    build = ApiServer.get_fast_api_app
    if getattr(build, "adk_redis_hooked", False):
        return

    def get_fast_api_app(self: Any, *args: Any, **kwargs: Any) -> Any:
        return install_error_handlers(build(self, *args, **kwargs))

    get_fast_api_app.adk_redis_hooked = True  # type: ignore[attr-defined]
    get_fast_api_app.__wrapped__ = build  # type: ignore[attr-defined]
    get_fast_api_app.__doc__ = build.__doc__
    ApiServer.get_fast_api_app = get_fast_api_app  # type: ignore[method-assign]


def register(registry: ServiceRegistry | None = None) -> ServiceRegistry:
    """Register adk_redis' session and memory factories for every Redis URI scheme.

    Uses ADK's global registry by default.  Call it after ADK has built its
    registry (``get_service_registry()`` does that first), so these factories
    replace any built-in ``redis`` handler.  Idempotent.
    """
    registry = registry if registry is not None else get_service_registry()
    _hook_adk_apps()
    for scheme in SCHEMES:
        registry.register_session_service(scheme, session_factory)
        registry.register_memory_service(scheme, memory_factory)
    return registry
