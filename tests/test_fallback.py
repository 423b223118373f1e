"""Circuit breaker + in-memory fallback, with real outages (killed/restarted servers) and fakeredis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.in_memory_session_service import InMemorySessionService

from adk_redis import RedisSessionService, RedisUnavailableError, load_settings
from adk_redis.resilience._fallback import (
    BreakerState,
    CircuitBreaker,
    FallbackSessionService,
    create_session_service,
)

from .servers import RedisServer, free_port

APP = "app"
FAST = {"redis_connect_timeout": 0.2, "redis_socket_timeout": 0.5, "redis_retry_attempts": 1}


def fast_settings(**kw: Any) -> Any:
    return load_settings(**FAST, **kw)


def ev(author: str = "agent", **delta: Any) -> Event:
    return Event(author=author, invocation_id="inv", actions=EventActions(state_delta=delta))


@pytest.fixture
def aof_server() -> Iterator[RedisServer]:
    server = RedisServer(args=["--appendonly", "yes", "--appendfsync", "always"])
    server.start()
    yield server
    server.stop()


def test_breaker_opens_after_threshold() -> None:
    b = CircuitBreaker(failure_threshold=3)
    assert not b.record_failure(ConnectionError("x"))
    b.record_success()
    assert not b.record_failure(ConnectionError("x"))
    assert not b.record_failure(ConnectionError("x"))
    assert b.record_failure(ConnectionError("x"))
    assert b.state is BreakerState.OPEN and b.times_opened == 1
    b.half_open()
    b.close()
    assert b.state is BreakerState.CLOSED and b.consecutive_failures == 0


async def test_acknowledged_events_survive_crash(aof_server: RedisServer, prefix: str) -> None:
    """appendfsync always: every event whose append returned is there after kill -9 + restart."""
    svc = RedisSessionService(aof_server.url, settings=fast_settings(), key_prefix=prefix)
    s = await svc.create_session(app_name=APP, user_id="u", state={"user:k": 1})
    ids = [(await svc.append_event(s, ev(n=i))).id for i in range(50)]
    aof_server.kill()
    aof_server.start()
    got = await svc.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert got is not None
    assert [e.id for e in got.events] == ids
    assert got.state["n"] == 49 and got.state["user:k"] == 1
    await svc.close()


async def test_kill_fallback_restart_write_back(aof_server: RedisServer, prefix: str) -> None:
    redis_svc = RedisSessionService(aof_server.url, settings=fast_settings(), key_prefix=prefix)
    svc = FallbackSessionService(redis_svc, health_check_interval=0.05)
    s1 = await svc.create_session(app_name=APP, user_id="u", state={"a": 1})
    before = [(await svc.append_event(s1, ev(n=i))).id for i in range(5)]
    assert svc.state is BreakerState.CLOSED

    aof_server.kill()
    t0 = time.monotonic()
    during = []
    for i in range(5):  # each op succeeds (served by memory) while the breaker trips
        during.append((await svc.append_event(s1, ev(n=100 + i, **{"user:seen": i}))).id)
    ops_time = time.monotonic() - t0
    # Only the first append touched Redis (the session is memory's until written back);
    # the health checks' failed PINGs trip the breaker.
    deadline = time.monotonic() + 5
    while svc.state is not BreakerState.OPEN and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    switch_over = time.monotonic() - t0
    assert svc.state is BreakerState.OPEN
    t1 = time.monotonic()
    s2 = await svc.create_session(app_name=APP, user_id="u", state={"b": 2, "user:fresh": True})
    await svc.append_event(s2, ev(x=1))
    open_op = time.monotonic() - t1
    got = await svc.get_session(app_name=APP, user_id="u", session_id=s1.id)
    assert got is not None and [e.id for e in got.events] == before + during
    listed = await svc.list_sessions(app_name=APP, user_id="u")
    assert {x.id for x in listed.sessions} == {s1.id, s2.id}
    stats = svc.get_redis_stats()
    assert stats["breaker_state"] == "open" and stats["last_error"] and stats["store_type"] == "memory"
    assert stats["pending_write_back"] == 2

    t2 = time.monotonic()
    aof_server.start()
    assert await svc.wait_closed(10)
    recovery = time.monotonic() - t2
    print(
        f"\n5 appends right after the kill: {ops_time * 1000:.0f} ms; breaker open after "
        f"{switch_over * 1000:.0f} ms; "
        f"2 ops while open: {open_op * 1000:.1f} ms; recovery after restart: {recovery * 1000:.0f} ms"
    )
    stats = svc.get_redis_stats()
    assert stats["written_back"] == 2 and stats["conflicts"] == 0 and stats["breaker_state"] == "closed"
    assert stats["store_type"] == "redis"
    assert stats["connection_retries"] > 0 and stats["pool"]["created"] >= 1

    # The data is in Redis (a fresh client, no memory involved).
    check = RedisSessionService(aof_server.url, settings=fast_settings(), key_prefix=prefix)
    r1 = await check.get_session(app_name=APP, user_id="u", session_id=s1.id)
    r2 = await check.get_session(app_name=APP, user_id="u", session_id=s2.id)
    assert r1 is not None and [e.id for e in r1.events] == before + during
    assert r1.state["n"] == 104 and r1.state["a"] == 1 and r1.state["user:seen"] == 4
    assert r2 is not None and r2.state["b"] == 2 and r2.state["x"] == 1 and r2.state["user:fresh"] is True
    # The caller's session objects keep working against Redis (no stale error).
    await svc.append_event(s1, ev(n=200))
    await svc.append_event(s2, ev(x=2))
    r1 = await check.get_session(app_name=APP, user_id="u", session_id=s1.id)
    assert r1 is not None and len(r1.events) == 11 and r1.state["n"] == 200
    await check.close()
    await svc.close()


async def test_diverged_redis_copy_is_reported_not_overwritten(aof_server: RedisServer, prefix: str) -> None:
    svc = FallbackSessionService(
        RedisSessionService(aof_server.url, settings=fast_settings(), key_prefix=prefix),
        health_check_interval=60,
    )
    s = await svc.create_session(app_name=APP, user_id="u")
    await svc.append_event(s, ev(n=1))
    aof_server.kill()
    outage = [(await svc.append_event(s, ev(n=10 + i))).id for i in range(4)]
    assert svc.get_redis_stats()["pending_write_back"] == 1
    aof_server.start()
    other = RedisSessionService(aof_server.url, settings=fast_settings(), key_prefix=prefix)
    theirs = await other.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert theirs is not None
    await other.append_event(theirs, ev(n=999))
    await svc.write_back()
    stats = svc.get_redis_stats()
    # Merge rule: each of the 4 outage events writes "n", which the other writer changed: all 4 reported,
    # each naming the key; nothing of theirs is overwritten.
    assert stats["conflicts"] == 4 and stats["pending_write_back"] == 0 and stats["failed"] == 0
    assert {c.session_id for c in svc.conflicts} == {s.id} and all(c.keys == ("n",) for c in svc.conflicts)
    # Each conflict holds its one event (memory's object, no copy of the session), once.
    assert [c.event.id for c in svc.conflicts if c.event] == outage and len(set(outage)) == 4
    kept = await other.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert kept is not None and len(kept.events) == 2 and kept.state["n"] == 999
    await other.close()
    await svc.close()


async def test_delete_during_outage_is_replayed(aof_server: RedisServer, prefix: str) -> None:
    svc = FallbackSessionService(
        RedisSessionService(aof_server.url, settings=fast_settings(), key_prefix=prefix),
        health_check_interval=0.05,
        failure_threshold=1,
    )
    s = await svc.create_session(app_name=APP, user_id="u")
    aof_server.kill()
    await svc.delete_session(app_name=APP, user_id="u", session_id=s.id)
    assert svc.state is BreakerState.OPEN
    assert await svc.get_session(app_name=APP, user_id="u", session_id=s.id) is None
    aof_server.start()
    assert await svc.wait_closed(10)
    assert await svc.redis.get_session(app_name=APP, user_id="u", session_id=s.id) is None
    assert (await svc.list_sessions(app_name=APP)).sessions == []
    await svc.close()


async def test_fakeredis_disconnect_and_reconnect(prefix: str) -> None:
    """The same cycle on fakeredis (its server can be 'disconnected')."""
    server = fakeredis.FakeServer()
    client = fakeredis.FakeAsyncRedis(server=server)
    svc = FallbackSessionService(
        RedisSessionService(client=client, key_prefix=prefix), health_check_interval=0.01
    )
    s = await svc.create_session(app_name=APP, user_id="u")
    await svc.append_event(s, ev(n=1))
    server.connected = False
    for i in range(3):
        await svc.append_event(s, ev(n=2 + i))  # first one fails over; s is memory's now
    for _ in range(2):  # two more failed Redis operations: three in a row
        with pytest.raises(RedisUnavailableError):  # not memory's: it may exist in Redis
            await svc.get_session(app_name=APP, user_id="nobody", session_id="x")
    assert svc.state is BreakerState.OPEN
    t = await svc.create_session(app_name=APP, user_id="v", state={"app:flag": "on"})
    assert (await svc.get_user_state(app_name=APP, user_id="u")) == {}
    server.connected = True
    assert await svc.wait_closed(5)
    got = await svc.redis.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert got is not None and len(got.events) == 4 and got.state["n"] == 4
    got_t = await svc.redis.get_session(app_name=APP, user_id="v", session_id=t.id)
    assert got_t is not None and got_t.state["app:flag"] == "on"
    assert svc.get_redis_stats()["written_back"] == 2
    await svc.close()


async def test_below_threshold_failure_keeps_session_in_memory(prefix: str) -> None:
    server = fakeredis.FakeServer()
    svc = FallbackSessionService(
        RedisSessionService(client=fakeredis.FakeAsyncRedis(server=server), key_prefix=prefix),
        health_check_interval=0.01,
    )
    server.connected = False
    s = await svc.create_session(app_name=APP, user_id="u")  # one failure: breaker stays closed
    assert svc.state is BreakerState.CLOSED and svc.get_redis_stats()["pending_write_back"] == 1
    server.connected = True
    # Memory stays authoritative for the dirty session until it is written back.
    await svc.append_event(s, ev(n=1))
    assert await svc.wait_closed(5)
    got = await svc.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert got is not None and got.state["n"] == 1 and len(got.events) == 1
    await svc.close()


async def test_create_session_service_modes(aof_server: RedisServer, prefix: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}"
    svc = await create_session_service(fast_settings(redis_enabled=False))
    assert isinstance(svc, InMemorySessionService)
    with pytest.raises(RedisUnavailableError):
        await create_session_service(fast_settings(redis_url=dead, redis_fallback_to_memory=False))
    plain = await create_session_service(
        fast_settings(redis_url=aof_server.url, redis_fallback_to_memory=False), key_prefix=prefix
    )
    assert isinstance(plain, RedisSessionService)
    await plain.close()
    fb = await create_session_service(fast_settings(redis_url=dead), health_check_interval=0.05)
    assert isinstance(fb, FallbackSessionService) and fb.state is BreakerState.OPEN
    s = await fb.create_session(app_name=APP, user_id="u")
    assert await fb.get_session(app_name=APP, user_id="u", session_id=s.id) is not None
    await fb.close()
    up = await create_session_service(fast_settings(redis_url=aof_server.url), key_prefix=prefix)
    assert isinstance(up, FallbackSessionService) and up.state is BreakerState.CLOSED
    s = await up.create_session(app_name=APP, user_id="u")
    assert await up.redis.get_session(app_name=APP, user_id="u", session_id=s.id) is not None
    await up.close()


async def test_create_memory_service_modes(aof_server: RedisServer, prefix: str) -> None:
    from google.adk.memory.in_memory_memory_service import InMemoryMemoryService

    from adk_redis import FallbackMemoryService, create_memory_service
    from adk_redis.memory._service import RedisMemoryService

    dead = f"redis://127.0.0.1:{free_port()}"
    assert isinstance(await create_memory_service(fast_settings(redis_enabled=False)), InMemoryMemoryService)
    fb = await create_memory_service(fast_settings(redis_url=dead), health_check_interval=0.05)
    assert isinstance(fb, FallbackMemoryService) and fb.state is BreakerState.OPEN
    await fb.add_events_to_memory(app_name=APP, user_id="u", events=[said("the quokka is happy")])
    assert len((await fb.search_memory(app_name=APP, user_id="u", query="quokka")).memories) == 1
    await fb.close()
    with pytest.raises(RedisUnavailableError):
        await create_memory_service(fast_settings(redis_url=dead, redis_fallback_to_memory=False))
    plain = await create_memory_service(
        fast_settings(redis_url=aof_server.url, redis_fallback_to_memory=False), key_prefix=prefix
    )
    assert isinstance(plain, RedisMemoryService)
    await plain.close()
    up = await create_memory_service(fast_settings(redis_url=aof_server.url), key_prefix=prefix)
    assert isinstance(up, FallbackMemoryService) and up.state is BreakerState.CLOSED
    await up.close()


def said(text: str, author: str = "user") -> Event:
    from google.genai import types

    return Event(
        author=author, invocation_id="inv", content=types.Content(role="user", parts=[types.Part(text=text)])
    )


async def test_memory_outage_journal_replayed_in_order(aof_server: RedisServer, prefix: str) -> None:
    """Memory writes during a real outage are served from memory and replayed on Redis after the restart."""
    from google.adk.memory.memory_entry import MemoryEntry
    from google.genai import types

    from adk_redis import FallbackMemoryService, RedisMemoryService

    redis_mem = RedisMemoryService(aof_server.url, settings=fast_settings(), key_prefix=prefix)
    svc = FallbackMemoryService(redis_mem, health_check_interval=0.05)
    kept, doomed = said("I keep a parrot named Kiwi"), said("my old car was a rusty Volvo")
    await svc.add_events_to_memory(app_name=APP, user_id="u", events=[kept, doomed], session_id="s1")
    before = (await svc.search_memory(app_name=APP, user_id="u", query="Volvo")).memories
    assert len(before) == 1 and before[0].custom_metadata["event_id"] == doomed.id
    doomed_id = before[0].id

    aof_server.kill()
    new = said("we are moving to Lisbon in June")
    await svc.add_events_to_memory(app_name=APP, user_id="u", events=[new], session_id="s1")
    await svc.add_memory(
        app_name=APP,
        user_id="u",
        memories=[MemoryEntry(content=types.Content(parts=[types.Part(text="allergic to peanuts")]))],
    )
    await svc.delete_memory(app_name=APP, user_id="u", memory_id=doomed_id)
    deadline = time.monotonic() + 5
    while svc.state is not BreakerState.OPEN and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert svc.state is BreakerState.OPEN
    # During the outage: what was added during it is searchable, with the ids Redis will give it.
    during = (await svc.search_memory(app_name=APP, user_id="u", query="moving Lisbon")).memories
    assert [m.custom_metadata["event_id"] for m in during] == [new.id]
    lisbon_id = during[0].id
    assert lisbon_id.startswith("h:s1:")
    peanut = (await svc.search_memory(app_name=APP, user_id="u", query="peanuts")).memories
    assert len(peanut) == 1 and peanut[0].id and not peanut[0].id.startswith(("h:", "m:"))
    with pytest.raises(RedisUnavailableError):
        await svc.forget_user(app_name=APP, user_id="u")
    with pytest.raises(RedisUnavailableError):  # our own management calls are Redis only
        await svc.list_memories(app_name=APP, user_id="u")
    assert svc.get_redis_stats()["pending_write_back"] == 3

    aof_server.start()
    assert await svc.wait_closed(10)
    stats = svc.get_redis_stats()
    assert (
        stats["written_back"] == 3 and stats["pending_write_back"] == 0 and stats["breaker_state"] == "closed"
    )

    check = RedisMemoryService(aof_server.url, settings=fast_settings(), key_prefix=prefix)
    after = (await check.search_memory(app_name=APP, user_id="u", query="moving Lisbon")).memories
    assert [m.id for m in after] == [lisbon_id]  # the same id as during the outage
    assert [
        m.id for m in (await check.search_memory(app_name=APP, user_id="u", query="peanuts")).memories
    ] == [peanut[0].id]
    assert (await check.search_memory(app_name=APP, user_id="u", query="Volvo")).memories == []
    assert len((await check.search_memory(app_name=APP, user_id="u", query="parrot Kiwi")).memories) == 1
    # Replaying again (an interrupted write-back resumed) changes nothing: every step is idempotent.
    await redis_mem.add_events_to_memory(
        app_name=APP, user_id="u", events=[kept, doomed, new], session_id="s1"
    )
    assert (await check.search_memory(app_name=APP, user_id="u", query="Volvo")).memories == []
    assert len((await check.search_memory(app_name=APP, user_id="u", query="Lisbon")).memories) == 1
    # After recovery the service is on Redis again, management calls and forget_user included.
    listed = await svc.list_memories(app_name=APP, user_id="u", kind="memory")
    assert [m.id for m in listed.memories] == [peanut[0].id]
    assert await svc.delete_memories(app_name=APP, user_id="u", memory_ids=[str(peanut[0].id)]) == 1
    assert (await svc.forget_user(app_name=APP, user_id="u")).memories == 2  # the parrot and Lisbon turns
    assert (await check.search_memory(app_name=APP, user_id="u", query="parrot")).memories == []
    await check.close()
    await svc.close()


async def test_memory_single_failure_keeps_order(prefix: str) -> None:
    """One failed write (breaker still closed) queues later writes too, and search merges both sides."""
    from adk_redis import FallbackMemoryService, RedisMemoryService

    server = fakeredis.FakeServer()
    client = fakeredis.FakeAsyncRedis(server=server)
    svc = FallbackMemoryService(
        RedisMemoryService(client=client, key_prefix=prefix), failure_threshold=5, health_check_interval=0.05
    )
    await svc.add_events_to_memory(app_name=APP, user_id="u", events=[said("red bicycle")], session_id="a")
    server.connected = False
    await svc.add_events_to_memory(app_name=APP, user_id="u", events=[said("blue bicycle")], session_id="a")
    assert svc.state is BreakerState.CLOSED and svc.get_redis_stats()["pending_write_back"] == 1
    server.connected = True
    hits = (await svc.search_memory(app_name=APP, user_id="u", query="bicycle")).memories
    assert sorted(m.content.parts[0].text for m in hits if m.content.parts) == ["blue bicycle", "red bicycle"]
    assert await svc.wait_closed(5)
    hits = (await svc.redis.search_memory(app_name=APP, user_id="u", query="bicycle")).memories
    assert len(hits) == 2
    await svc.close()
