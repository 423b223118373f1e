"""Connection: build a pooled redis-py asyncio client with redis-py's own Retry/backoff."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlparse

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .config import RedisSettings
from .errors import ConfigurationError
from .url import parse_redis_url

SUPPORTED_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel")


class CountingRetry(Retry):
    """redis-py's Retry that also counts failed attempts (``.failures``).

    redis-py deep-copies the retry into every connection; the copies share
    one counter, so ``.failures`` is the client-wide total.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counter = [0]

    @property
    def failures(self) -> int:
        return self._counter[0]

    def __deepcopy__(self, memo: dict[int, Any]) -> CountingRetry:
        return copy.copy(self)  # shares the counter; supported errors are an immutable tuple

    async def call_with_retry(self, do: Any, fail: Any, *args: Any, **kwargs: Any) -> Any:
        async def counted(error: Exception, *rest: Any) -> Any:
            self._counter[0] += 1
            return await fail(error, *rest)

        return await super().call_with_retry(do, counted, *args, **kwargs)


def make_retry(attempts: int) -> Retry:
    """Exponential backoff with jitter (base 50 ms, cap 2 s) for transient errors."""
    return CountingRetry(
        ExponentialWithJitterBackoff(base=0.05, cap=2.0),
        attempts,
        supported_errors=(RedisConnectionError, RedisTimeoutError),
    )


_FAST_CLASSES: dict[type[Any], type[Any]] = {}


def _fast_packing(connection_class: type[Any]) -> type[Any]:
    """A subclass of ``connection_class`` that packs commands with hiredis (C) when available.

    redis-py's asyncio connections pack every command in Python; for the
    25-argument append script that is a measurable share of a call.  Output
    is byte-identical; anything hiredis cannot pack goes the Python way.
    """
    try:
        import hiredis
    except ImportError:  # pragma: no cover - hiredis is a dependency
        return connection_class
    if connection_class not in _FAST_CLASSES:
        python_pack = connection_class.pack_command

        def pack_command(self: Any, *args: Any) -> list[bytes]:
            first = args[0] if args else None
            if isinstance(first, str) and " " not in first:
                try:
                    return [hiredis.pack_command(args)]
                except TypeError:
                    pass
            return list(python_pack(self, *args))

        _FAST_CLASSES[connection_class] = type(
            "Fast" + connection_class.__name__, (connection_class,), {"pack_command": pack_command}
        )
    return _FAST_CLASSES[connection_class]


def _sentinel_client(url: str, settings: RedisSettings, common: dict[str, Any]) -> Any:
    """``redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]``."""
    from redis.asyncio.sentinel import Sentinel

    parsed = urlparse(url)
    hosts = parsed.netloc.rpartition("@")[2]
    sentinels = []
    for part in hosts.split(","):
        host, _, port = part.rpartition(":")
        sentinels.append((host or "127.0.0.1", int(port or 26379)))
    path = [p for p in parsed.path.split("/") if p]
    if not path:
        raise ValueError("redis+sentinel:// URLs need a service name: redis+sentinel://host:port/mymaster")
    if parsed.password:
        common["password"] = parsed.password
    if len(path) > 1:
        common["db"] = int(path[1])
    elif settings.redis_db is not None:
        common["db"] = settings.redis_db
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        sentinels,
        sentinel_kwargs={
            "socket_timeout": settings.redis_socket_timeout,
            "socket_connect_timeout": settings.redis_connect_timeout,
        },
    )
    return sentinel.master_for(path[0], max_connections=settings.redis_max_connections, **common)


def create_client(settings: RedisSettings, uri: str | None = None) -> Any:
    """Create a client for ``uri`` (or ``settings.redis_url``).

    ``redis+cluster://host:port`` (or ``rediss+cluster://``) returns a
    ``redis.asyncio.RedisCluster``; ``redis+sentinel://host:port/service``
    a client of the service's current master (follows failovers); every
    other scheme a pooled
    ``redis.asyncio.Redis``.
    """
    url = uri or settings.redis_url
    checked = parse_redis_url(url)  # ConfigurationError naming the offending part (adk_redis.url)
    if checked.ours:
        raise ConfigurationError(
            f"Invalid Redis URL {checked.redacted!r}: {', '.join(sorted(checked.ours))} is read from "
            "adk web / adk api_server service URIs only; pass it as a constructor argument or setting"
        )
    scheme = urlparse(url).scheme
    if scheme not in SUPPORTED_SCHEMES:
        raise ValueError(
            f"Unsupported Redis URL scheme {scheme!r}; expected one of {', '.join(SUPPORTED_SCHEMES)}"
        )
    common: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "retry": make_retry(settings.redis_retry_attempts),
        "decode_responses": False,
    }
    if settings.redis_password and "@" not in url:
        common["password"] = settings.redis_password
    if scheme == "redis+sentinel":
        return _sentinel_client(url, settings, common)
    if scheme.endswith("+cluster"):
        from redis.asyncio.cluster import RedisCluster

        real = url.replace("+cluster", "", 1)
        return RedisCluster.from_url(real, max_connections=settings.redis_max_connections, **common)
    if settings.redis_db is not None and scheme != "unix":
        common["db"] = settings.redis_db
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_connect_timeout + settings.redis_socket_timeout,
        health_check_interval=30,
        **common,
    )
    pool.connection_class = _fast_packing(pool.connection_class)
    return aioredis.Redis.from_pool(pool)  # the client owns (and closes) its pool


def is_cluster(client: Any) -> bool:
    """True for a Redis Cluster client (multi-key steps must stay in one slot)."""
    from redis.asyncio.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def pool_stats(client: Any) -> dict[str, int | None]:
    """Created / in-use connections of a redis-py asyncio client (summed over cluster nodes)."""
    client = getattr(client, "current", client)  # a LoopLocalClient: the current loop's client
    pools: list[Any] = []
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        pools.append(pool)
    elif hasattr(client, "get_nodes"):
        pools.extend(getattr(n, "connection_pool", None) or n for n in client.get_nodes())
    created = in_use = 0
    max_conn: int | None = None
    for p in pools:
        available = getattr(p, "_available_connections", None)
        used = getattr(p, "_in_use_connections", None)
        if available is None and hasattr(p, "_free"):  # cluster node: _connections + _free
            conns = getattr(p, "_connections", [])
            free = getattr(p, "_free", [])
            created += len(conns)
            in_use += len(conns) - len(free)
        else:
            created += len(available or []) + len(used or [])
            in_use += len(used or [])
        mc = getattr(p, "max_connections", None)
        if isinstance(mc, int):
            max_conn = (max_conn or 0) + mc
    return {"created": created, "in_use": in_use, "max": max_conn}


def retry_failures(client: Any) -> int:
    """Failed attempts redis-py's Retry made (the CountingRetry of :func:`make_retry`)."""
    client = getattr(client, "current", client)
    retry = getattr(client, "retry", None)
    pool = getattr(client, "connection_pool", None)
    if retry is None and pool is not None:
        retry = getattr(pool, "connection_kwargs", {}).get("retry")
    return int(getattr(retry, "failures", 0) or 0)


def client_stats(client: Any) -> dict[str, Any]:
    """``connection_retries`` and ``pool`` (created / in use / max) of a client."""
    return {"connection_retries": retry_failures(client), "pool": pool_stats(client)}
