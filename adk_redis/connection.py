"""Connection: build a pooled redis-py asyncio client with redis-py's own Retry/backoff."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .config import RedisSettings

SUPPORTED_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


def make_retry(attempts: int) -> Retry:
    """Exponential backoff with jitter (base 50 ms, cap 2 s) for transient errors."""
    return Retry(
        ExponentialWithJitterBackoff(base=0.05, cap=2.0),
        attempts,
        supported_errors=(RedisConnectionError, RedisTimeoutError),
    )


def create_client(settings: RedisSettings, uri: str | None = None) -> Any:
    """Create a client for ``uri`` (or ``settings.redis_url``).

    ``redis+cluster://host:port`` (or ``rediss+cluster://``) returns a
    ``redis.asyncio.RedisCluster``; every other scheme a pooled
    ``redis.asyncio.Redis``.
    """
    url = uri or settings.redis_url
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
    return aioredis.Redis(connection_pool=pool)


def is_cluster(client: Any) -> bool:
    """True for a Redis Cluster client (multi-key steps must stay in one slot)."""
    from redis.asyncio.cluster import RedisCluster

    return isinstance(client, RedisCluster)
