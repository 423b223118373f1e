"""adk_redis.register(): ADK's service registry builds our services from every Redis URI form.

The registry works on URLs, so these tests use real servers (the shared one
from ``redis_url`` plus throw-away unix-socket and cluster servers);
fakeredis has no URL to register.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from google.adk.cli.service_registry import ServiceRegistry, get_service_registry
from google.adk.cli.utils.service_factory import (
    create_memory_service_from_options,
    create_session_service_from_options,
)
from google.adk.events.event import Event
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.genai import types
from redis.asyncio.cluster import RedisCluster

import adk_redis
from adk_redis import ConfigurationError, RedisSessionService
from adk_redis._core.connection import SUPPORTED_SCHEMES
from adk_redis.registry import SCHEMES, memory_factory, session_factory, split_uri
from tests.servers import SentinelProcess, redis_cluster, redis_server


async def _drop(client: Any, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def cleanup(redis_url: str, prefix: str) -> AsyncIterator[None]:
    yield
    client = aioredis.Redis.from_url(redis_url)
    await _drop(client, prefix)
    await client.aclose()


async def _round_trip(service: RedisSessionService) -> None:
    """Create, append, reload: the service really talks to its server."""
    session = await service.create_session(app_name="app", user_id="u", state={"user:n": 1})
    event = Event(author="user", content=types.Content(role="user", parts=[types.Part(text="hi")]))
    await service.append_event(session, event)
    loaded = await service.get_session(app_name="app", user_id="u", session_id=session.id)
    assert loaded is not None
    assert [e.id for e in loaded.events] == [event.id]
    assert loaded.state["user:n"] == 1


def test_register_claims_every_scheme_for_sessions_and_memory() -> None:
    registry = ServiceRegistry()
    assert adk_redis.register(registry) is registry
    for scheme in SCHEMES:
        assert registry._session_factories[scheme] is session_factory
        assert registry._memory_factories[scheme] is memory_factory
    assert set(SCHEMES) >= {"redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel"}


def test_ours_replace_a_previously_registered_redis_handler(redis_url: str, prefix: str) -> None:
    registry = ServiceRegistry()
    registry.register_session_service("redis", lambda uri, **kw: InMemorySessionService())
    adk_redis.register(registry)
    adk_redis.register(registry)  # idempotent
    service = registry.create_session_service(f"{redis_url}?key_prefix={prefix}", agents_dir="/tmp")
    assert isinstance(service, RedisSessionService)


async def test_global_registry_through_adk_cli_factory(redis_url: str, prefix: str, cleanup: None) -> None:
    """What ``adk web --session_service_uri redis://...`` does after samples/services.py ran."""
    assert adk_redis.register() is get_service_registry()
    service = create_session_service_from_options(
        base_dir=Path(__file__).parent, session_service_uri=f"{redis_url}?key_prefix={prefix}"
    )
    assert isinstance(service, RedisSessionService)
    assert service.keys.prefix == prefix
    try:
        await _round_trip(service)
        # A second, independent instance sees the same data.
        other = create_session_service_from_options(
            base_dir="/nonexistent", session_service_uri=f"{redis_url}?key_prefix={prefix}"
        )
        assert isinstance(other, RedisSessionService)
        listed = await other.list_sessions(app_name="app", user_id="u")
        assert len(listed.sessions) == 1
        await other.close()
    finally:
        await service.close()


async def test_query_parameters_are_consumed(redis_url: str, prefix: str, cleanup: None) -> None:
    uri = f"{redis_url}?key_prefix={prefix}&session_ttl_hours=2&socket_keepalive=true"
    clean, ours = split_uri(uri)
    assert ours == {"key_prefix": prefix, "session_ttl_hours": "2"}
    assert clean == f"{redis_url}?socket_keepalive=true"
    service = session_factory(uri, agents_dir="/tmp", unexpected_db_kwarg=1)
    assert isinstance(service, RedisSessionService)
    assert service.settings.session_ttl_hours == 2
    try:
        await _round_trip(service)
        meta = service.keys.session("app", "u", "x").meta
        assert meta.startswith(f"{prefix}:")
        listed = await service.list_sessions(app_name="app", user_id="u")
        ttl = await service.client.pttl(service.keys.session("app", "u", listed.sessions[0].id).meta)
        assert 0 < ttl <= 2 * 3600 * 1000
    finally:
        await service.close()


def test_bad_ttl_parameter_is_a_clear_error(redis_url: str) -> None:
    with pytest.raises(ConfigurationError, match="session_ttl_hours"):
        session_factory(f"{redis_url}?session_ttl_hours=soon")


async def test_unix_socket_uri(tmp_path: Path, prefix: str) -> None:
    sock = tmp_path / "r.sock"
    with redis_server(args=["--unixsocket", str(sock), "--unixsocketperm", "700"]):
        service = get_service_registry().create_session_service(
            f"unix://{sock}?key_prefix={prefix}", agents_dir=str(tmp_path)
        )
        assert isinstance(service, RedisSessionService)
        try:
            await _round_trip(service)
        finally:
            await service.close()


async def test_cluster_uri(prefix: str) -> None:
    with redis_cluster(3) as nodes:
        service = session_factory(f"redis+cluster://127.0.0.1:{nodes[0].port}?key_prefix={prefix}")
        assert isinstance(service, RedisSessionService)
        assert isinstance(service.client, RedisCluster)
        try:
            await _round_trip(service)
            listed = await service.list_sessions(app_name="app")
            assert len(listed.sessions) == 1
        finally:
            await service.close()


def test_tls_uris_build_tls_clients() -> None:
    """No TLS server here: check the clients are configured for TLS (no connection is made)."""
    plain = session_factory("rediss://127.0.0.1:6390/0")
    assert isinstance(plain, RedisSessionService)
    from redis.asyncio.connection import SSLConnection

    assert issubclass(plain.client.connection_pool.connection_class, SSLConnection)
    cluster = session_factory("rediss+cluster://127.0.0.1:6391")
    assert isinstance(cluster, RedisSessionService)
    assert isinstance(cluster.client, RedisCluster)


async def test_sentinel_uri(prefix: str) -> None:
    """redis+sentinel:// reaches our factory (a master plus one sentinel on loopback)."""
    registry = adk_redis.register(ServiceRegistry())
    if "redis+sentinel" not in SUPPORTED_SCHEMES:
        with pytest.raises(ConfigurationError, match=r"redis\+sentinel:// is not supported"):
            registry.create_session_service("redis+sentinel://127.0.0.1:26379/mymaster")
        return
    with redis_server(args=["--appendonly", "no"]) as master:
        sentinel = SentinelProcess(master.port, "adkmain").start()
        try:
            uri = f"redis+sentinel://127.0.0.1:{sentinel.port}/adkmain?key_prefix={prefix}"
            service = registry.create_session_service(uri, agents_dir="/tmp")
            assert isinstance(service, RedisSessionService)
            try:
                await _round_trip(service)
            finally:
                await service.close()
        finally:
            sentinel.stop()


async def test_memory_service_from_uri(redis_url: str, prefix: str, cleanup: None) -> None:
    """``--memory_service_uri redis://...`` builds RedisMemoryService; it stores and finds a session."""
    from adk_redis.memory._service import RedisMemoryService

    adk_redis.register()
    memory = create_memory_service_from_options(
        base_dir="/tmp", memory_service_uri=f"{redis_url}?key_prefix={prefix}"
    )
    assert isinstance(memory, RedisMemoryService)
    sessions = RedisSessionService(redis_url, key_prefix=prefix)
    try:
        session = await sessions.create_session(app_name="app", user_id="u")
        event = Event(
            author="user",
            content=types.Content(role="user", parts=[types.Part(text="my favourite colour is teal")]),
        )
        await sessions.append_event(session, event)
        await memory.add_session_to_memory(session)
        found = await memory.search_memory(app_name="app", user_id="u", query="favourite colour")
        assert any("teal" in (p.text or "") for m in found.memories for p in (m.content.parts or []))
        nothing = await memory.search_memory(app_name="app", user_id="someone-else", query="favourite colour")
        assert nothing.memories == []
    finally:
        await sessions.close()
        close = getattr(memory, "close", None)
        if close is not None:
            await close()


def test_memory_factory_builds_every_supported_scheme(prefix: str) -> None:
    from adk_redis.memory._service import RedisMemoryService

    for uri in (
        "redis://127.0.0.1:6390/0",
        "rediss://127.0.0.1:6390",
        "unix:///tmp/none.sock",
        "redis+cluster://127.0.0.1:6391",
    ):
        assert isinstance(memory_factory(f"{uri}?key_prefix={prefix}", agents_dir="/tmp"), RedisMemoryService)
    sentinel = "redis+sentinel://127.0.0.1:26379/mymaster"
    if "redis+sentinel" in SUPPORTED_SCHEMES:
        assert isinstance(memory_factory(sentinel), RedisMemoryService)  # connects lazily
    else:
        with pytest.raises(ConfigurationError, match="memory service"):
            memory_factory(sentinel)
