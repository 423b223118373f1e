"""Every failure typed whatever the client's origin: clients injected with ``client=`` (a
``redis.asyncio.Redis`` or ``RedisCluster`` the application built) get the same translation and
deadline as the clients adk_redis makes (:func:`adk_redis._core.connection.adopt_client`).

Real throw-away servers: one killed under a user-built client, one stalled with ``DEBUG SLEEP``, a
cluster whose nodes are killed under a user-built ``RedisCluster``.  fakeredis keeps working (unit
tests inject it): checked here too.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis
import redis.exceptions
from google.adk.sessions.session import Session
from redis.asyncio.cluster import RedisCluster

from adk_redis import (
    CrossSessionMemory,
    RedisMemoryService,
    RedisOutcomeUnknownError,
    RedisSessionService,
    RedisUnavailableError,
    create_session_store,
    load_settings,
)
from adk_redis.keys import KeySchema

from .helpers import text_event as said
from .servers import redis_cluster, redis_server

APP = "app"


def ops(client: Any, prefix: str, **kw: Any) -> dict[str, Callable[[], Awaitable[Any]]]:
    """Session, memory and cross-session memory operations, every service built on ``client``."""
    settings = load_settings(redis_key_prefix=prefix, **kw)
    sessions = RedisSessionService(client=client, settings=settings)
    memory = RedisMemoryService(client=client, settings=settings)
    cross = CrossSessionMemory(client, KeySchema(prefix), settings, app_name=APP)
    session = Session(id="s1", app_name=APP, user_id="u", state={}, events=[said("hello there")])
    session._storage_update_marker = "0"
    return {
        "create_session": lambda: sessions.create_session(app_name=APP, user_id="u", session_id="n1"),
        "get_session": lambda: sessions.get_session(app_name=APP, user_id="u", session_id="s1"),
        "list_sessions": lambda: sessions.list_sessions(app_name=APP, user_id="u"),
        "append_event": lambda: sessions.append_event(session, said("more")),
        "delete_session": lambda: sessions.delete_session(app_name=APP, user_id="u", session_id="s1"),
        "add_session_to_memory": lambda: memory.add_session_to_memory(session),
        "search_memory": lambda: memory.search_memory(app_name=APP, user_id="u", query="hello"),
        "forget_user": lambda: memory.forget_user(app_name=APP, user_id="u"),
        "cross_store": lambda: cross.store_user_context("u", "prefs", {"tone": "brief"}),
        "cross_get": lambda: cross.get_user_context("u", "prefs"),
        "cross_history": lambda: cross.record_session("u", "s1", {"topic": "otters"}),
    }


async def run_all(calls: dict[str, Callable[[], Awaitable[Any]]]) -> dict[str, BaseException | None]:
    async def one(fn: Callable[[], Awaitable[Any]]) -> BaseException | None:
        try:
            await fn()
        except BaseException as exc:  # noqa: BLE001 - the subject of the test
            return exc
        return None

    results = await asyncio.gather(*(one(fn) for fn in calls.values()))
    return dict(zip(calls, results))


def check_typed(results: dict[str, BaseException | None], kinds: set[str]) -> None:
    problems = []
    for name, exc in results.items():
        if not isinstance(exc, RedisUnavailableError):
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        assert isinstance(exc, ConnectionError) and isinstance(exc, redis.exceptions.ConnectionError)
        assert "\n" not in str(exc), f"{name}: not one line: {exc!r}"
        if exc.kind not in kinds:
            problems.append(f"{name}: kind {exc.kind!r} not in {kinds}: {exc}")
    assert not problems, "\n".join(problems)


async def test_injected_client_of_a_killed_server_raises_typed_errors() -> None:
    with redis_server() as server:
        # the application's own client, redis-py's defaults (its retries back off up to seconds)
        client = aioredis.Redis(host="127.0.0.1", port=server.port)
        calls = ops(client, "ij" + uuid.uuid4().hex[:8], redis_operation_timeout=1.5)
        warm = await run_all(calls)  # every operation works through the injected client
        assert not [e for e in warm.values() if isinstance(e, ConnectionError)], warm
        server.kill()
        start = time.monotonic()
        results = await run_all(calls)
        took = time.monotonic() - start
        await client.aclose()
    # refused / lost connection, or the deadline when redis-py's own backoff outlasts it
    check_typed(results, {"refused", "closed", "deadline"})
    assert took < 1.5 + 1, took  # within the operation deadline


async def test_injected_client_of_a_stalled_server_is_cut_by_the_deadline() -> None:
    """A user-built client without a socket timeout: only the operation deadline bounds the call."""
    with redis_server(["--enable-debug-command", "yes"]) as server:
        client = aioredis.Redis(host="127.0.0.1", port=server.port)  # socket_timeout=None
        calls = ops(client, "is" + uuid.uuid4().hex[:8], redis_operation_timeout=0.5)
        warm = await run_all(calls)
        assert not [e for e in warm.values() if isinstance(e, ConnectionError)], warm
        sleeper = server.client(socket_timeout=10)
        thread = threading.Thread(target=lambda: sleeper.execute_command("DEBUG", "SLEEP", 1.5))
        thread.start()
        time.sleep(0.1)
        start = time.monotonic()
        try:
            results = await run_all(
                {k: v for k, v in calls.items() if k in ("get_session", "append_event", "cross_store")}
            )
            took = time.monotonic() - start
        finally:
            thread.join()
            sleeper.close()
        await client.aclose()
    check_typed(results, {"deadline"})
    # the writes were sent before the stall cut them: their outcome is unknown, the read's is not
    assert isinstance(results["append_event"], RedisOutcomeUnknownError)
    assert isinstance(results["cross_store"], RedisOutcomeUnknownError)
    assert not isinstance(results["get_session"], RedisOutcomeUnknownError)
    assert took < 1.3, took  # the 0.5 s deadline, not the 1.5 s stall


async def test_injected_cluster_client_of_a_dead_cluster_raises_typed_errors() -> None:
    with redis_cluster(3, node_timeout_ms=500) as nodes:
        client = RedisCluster(host="127.0.0.1", port=nodes[0].port)
        calls = ops(client, "ic" + uuid.uuid4().hex[:6], redis_operation_timeout=3)
        warm = await run_all(calls)
        assert not [e for e in warm.values() if isinstance(e, ConnectionError)], warm
        for node in nodes:
            node.kill()
        start = time.monotonic()
        results = await run_all(calls)
        took = time.monotonic() - start
        await client.aclose()
    check_typed(results, {"refused", "closed", "cluster", "deadline", "timeout"})
    assert took < 3 + 1, took


def test_design_api_with_an_injected_client_raises_typed_errors() -> None:
    """``create_session_store(client=...)``: the store's calls on a killed server are typed."""
    with redis_server() as server:
        client = aioredis.Redis(host="127.0.0.1", port=server.port)
        settings = load_settings(redis_key_prefix="id" + uuid.uuid4().hex[:8], redis_fallback_to_memory=False)
        store = create_session_store(client=client, settings=settings)
        try:
            store.ensure_session("d1", user_id="u")
            server.kill()
            start = time.monotonic()
            with pytest.raises(RedisUnavailableError) as info:
                store.add_message("d1", {"role": "user", "content": "hi"})
            assert time.monotonic() - start < 5 + 1
            assert info.value.kind in ("refused", "closed")
        finally:
            store.close()


async def test_fakeredis_still_works_and_stays_the_callers() -> None:
    fake = fakeredis.FakeAsyncRedis()
    svc = RedisSessionService(client=fake, key_prefix="fk" + uuid.uuid4().hex[:6])
    s = await svc.create_session(app_name=APP, user_id="u")
    await svc.append_event(s, said("hi"))
    got = await svc.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert got is not None and len(got.events) == 1
    assert isinstance(svc.client, fakeredis.FakeAsyncRedis)  # isinstance sees through the wrapper
    assert svc.client.current is fake and not svc.owns_client
    await svc.close()
    assert await fake.ping()  # an injected client is left open
    await fake.aclose()
