"""The design API's store keeps serving through a real Redis outage and writes back when Redis returns."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from adk_redis import (
    CrossSessionMemory,
    KeySchema,
    RedisSessionService,
    RedisSettings,
    RedisUnavailableError,
    create_session_store,
    get_agent_memory,
    get_session_history,
    get_session_store,
    get_session_store_stats,
    get_user_context,
    shutdown_session_store,
    store_agent_memory,
    store_user_context,
)
from adk_redis.store._api import SessionStoreConfig

from .servers import RedisServer

NO_CLEANUP = SessionStoreConfig(cleanup_interval_minutes=0)


async def _until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.fixture
def aof_server() -> Any:
    server = RedisServer(args=["--appendonly", "yes", "--appendfsync", "always"]).start()
    yield server
    server.stop()


async def test_store_serves_through_an_outage_and_writes_back(
    aof_server: RedisServer, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "REDIS_URL": aof_server.url,
        "REDIS_KEY_PREFIX": prefix,
        "REDIS_ENABLED": "true",
        "REDIS_CONNECT_TIMEOUT": "0.2",
        "REDIS_SOCKET_TIMEOUT": "0.5",
        "REDIS_RETRY_ATTEMPTS": "1",
        "REDIS_FAILURE_THRESHOLD": "2",
        "REDIS_HEALTH_CHECK_INTERVAL": "0.05",
    }.items():
        monkeypatch.setenv(name, value)
    await shutdown_session_store()
    store = get_session_store()
    try:
        assert get_session_store_stats()["store_type"] == "redis"
        store.ensure_session("before", user_id=7, title="old")
        store.add_message("before", {"role": "user", "content": "hello"})
        await store_user_context(7, "prefs", {"theme": "dark"})

        aof_server.kill()
        # Every call keeps working, served from memory; the breaker opens after two failures.
        store.ensure_session("during", user_id=7, title="new")
        store.add_message("during", {"role": "user", "content": "still here"})
        await store_user_context(7, "prefs", {"theme": "light"})
        await store_agent_memory("planner", "plan", {"steps": 3})
        assert store.get_session("during", user_id=8) is None  # another user: denied and counted
        assert await _until(lambda: store.get_redis_stats()["breaker_state"] == "open")
        t0 = time.monotonic()
        stats = get_session_store_stats()
        assert time.monotonic() - t0 < 0.5  # no waiting on timeouts while the breaker is open
        assert stats["store_type"] == "memory" and stats["redis"]["redis_available"] is False
        assert stats["redis"]["pending_write_back"] >= 2 and stats["security"]["total_failed_attempts"] == 1
        got = store.get_session("during", user_id=7)
        assert got is not None and [m["content"] for m in got["messages"]] == ["still here"]
        assert await get_user_context(7, "prefs") == {"theme": "light"}
        assert await get_agent_memory("planner", "plan") == {"steps": 3}
        assert [h["session_id"] for h in await get_session_history(7)] == ["during"]
        # A session that lives only in Redis is out of reach until Redis is back (documented).
        assert store.get_session("before", user_id=7) is None

        aof_server.start()
        assert await _until(
            lambda: (
                store.get_redis_stats()["breaker_state"] == "closed"
                and store.get_redis_stats()["pending_write_back"] == 0
            )
        )
        stats = get_session_store_stats()
        assert stats["store_type"] == "redis" and stats["redis"]["written_back"] >= 1
        assert stats["redis"]["conflicts"] == 0 and stats["redis"]["last_recovery_seconds"] is not None
        before = store.get_session("before", user_id=7)
        assert before is not None and [m["content"] for m in before["messages"]] == ["hello"]
    finally:
        await shutdown_session_store()

    # Everything written during the outage is in Redis now: read it with fresh clients.
    client = aioredis.Redis.from_url(aof_server.url)
    try:
        svc = RedisSessionService(client=client, key_prefix=prefix)
        during = await svc.get_session(app_name=prefix, user_id="7", session_id="during")
        assert during is not None and [e.content.parts[0].text for e in during.events if e.content] == [
            "still here"
        ]
        memory = CrossSessionMemory(client, KeySchema(prefix), RedisSettings(), app_name=prefix)
        assert await memory.get_user_context(7, "prefs") == {"theme": "light"}
        assert await memory.get_agent_memory("planner", "plan") == {"steps": 3}
        history = await memory.get_session_history(7)
        assert [h["session_id"] for h in history] == ["during", "before"]
    finally:
        await client.aclose()
    strict = RedisSettings(redis_url=aof_server.url, redis_key_prefix=prefix, redis_fallback_to_memory=False)
    other = create_session_store(NO_CLEANUP, settings=strict)  # another instance, straight on Redis
    try:
        assert other.get_session("during", user_id=8) is None  # the owner record was written back
        assert other.get_session("during", user_id=7) is not None
        assert other.get_security_stats()["total_failed_attempts"] == 2  # the outage's denial + this one
    finally:
        other.close()


def test_without_fallback_an_outage_raises() -> None:
    """REDIS_FALLBACK_TO_MEMORY=false: an outage after creation is a clear, typed error."""
    server = RedisServer().start()
    try:
        settings = RedisSettings(
            redis_url=server.url,
            redis_key_prefix="outage",
            redis_connect_timeout=0.5,
            redis_retry_attempts=1,
            redis_fallback_to_memory=False,
        )
        store = create_session_store(NO_CLEANUP, settings=settings)
        try:
            store.ensure_session("s", user_id=1)
            server.stop()
            with pytest.raises(RedisUnavailableError):
                store.get_session("s", user_id=1)
            stats = store.get_redis_stats()
            assert stats["redis_available"] is False and stats["last_error"]
            assert stats["connection_retries"] >= 1
        finally:
            store.close()
    finally:
        server.stop()


async def test_store_created_while_redis_is_down_moves_to_redis_when_it_comes_up(prefix: str) -> None:
    server = RedisServer()  # its port is chosen, nothing listens yet
    settings = RedisSettings(
        redis_url=server.url,
        redis_key_prefix=prefix,
        redis_connect_timeout=0.2,
        redis_retry_attempts=0,
        redis_health_check_interval=0.05,
    )
    store = create_session_store(NO_CLEANUP, settings=settings)
    try:
        assert store.store_type == "memory" and store.get_stats()["store_type"] == "memory"
        store.ensure_session("early", user_id=1, title="made while Redis was down")
        store.add_message("early", {"role": "user", "content": "hi"})
        server.start()
        assert await _until(
            lambda: store.store_type == "redis" and not store.get_redis_stats()["pending_write_back"]
        )
        assert store.get_stats()["store_type"] == "redis"
    finally:
        store.close()
    try:
        strict = settings.model_copy(update={"redis_fallback_to_memory": False})
        other = create_session_store(NO_CLEANUP, settings=strict)
        try:
            got = other.get_session("early", user_id=1)
            assert got is not None and got["title"] == "made while Redis was down"
            assert [m["content"] for m in got["messages"]] == ["hi"]
        finally:
            other.close()
    finally:
        server.stop()


def test_store_rides_out_a_stalled_server(prefix: str) -> None:
    """DEBUG SLEEP longer than the socket timeout: no call of the store waits longer than the deadline,
    the breaker opens after the threshold, and everything reaches Redis once the stall ends."""
    import threading

    server = RedisServer(args=["--enable-debug-command", "yes"]).start()
    deadline, threshold = 0.3, 2
    settings = RedisSettings(
        redis_url=server.url,
        redis_key_prefix=prefix,
        redis_socket_timeout=5,
        redis_operation_timeout=deadline,
        redis_failure_threshold=threshold,
        redis_health_check_interval=0.1,
    )
    store = create_session_store(NO_CLEANUP, settings=settings)
    try:
        store.ensure_session("s", user_id=1)

        def sleep() -> None:
            with server.client(socket_timeout=10) as c:
                c.execute_command("DEBUG", "SLEEP", 2.5)

        stall = threading.Thread(target=sleep)
        stall.start()
        time.sleep(0.1)
        waits = []
        t0 = time.monotonic()
        store.ensure_session("new", user_id=1)  # created during the stall: served from memory
        waits.append(time.monotonic() - t0)
        for i in range(6):
            t0 = time.monotonic()
            store.add_message("new", {"role": "user", "content": f"during {i}"})
            waits.append(time.monotonic() - t0)
        t0 = time.monotonic()
        assert store.get_stats()["store_type"] == "memory"
        waits.append(time.monotonic() - t0)
        # The first call costs at most deadline x threshold (owner lookup, owner claim), the rest nothing.
        assert waits[0] < deadline * threshold + 0.3, waits
        assert max(waits[1:]) < 0.2, waits
        stall.join()
        deadline_at = time.monotonic() + 10
        while (
            store.get_redis_stats()["breaker_state"] != "closed"
            or store.get_redis_stats()["pending_write_back"]
        ):
            assert time.monotonic() < deadline_at
            time.sleep(0.05)
        got = store.get_session("new", user_id=1)
        assert got is not None and [m["content"] for m in got["messages"]] == [
            f"during {i}" for i in range(6)
        ]
        assert store.get_session("s", user_id=1) is not None and store.get_session("new", user_id=2) is None
    finally:
        store.close()
        server.stop()
