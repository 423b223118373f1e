"""Faults against real throw-away servers: stalls (DEBUG SLEEP, CLIENT PAUSE), kills, write-backs that
meet stale or corrupted records, a health loop that meets unexpected errors, several event loops.

Short timeouts keep every stall to a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.session import Session
from google.genai import types

from adk_redis import (
    FallbackMemoryService,
    FallbackSessionService,
    RedisMemoryService,
    RedisSessionService,
    RedisUnavailableError,
    load_settings,
)
from adk_redis.resilience._breaker import BreakerState

from .servers import RedisServer, stall

APP = "app"
DEADLINE = 0.4
FAST = {
    "redis_connect_timeout": 0.3,
    "redis_socket_timeout": 2.0,  # longer than the deadline: the deadline must be what ends a stall
    "redis_retry_attempts": 2,
    "redis_operation_timeout": DEADLINE,
}


def settings(server: RedisServer, **kw: Any) -> Any:
    return load_settings(redis_url=server.url, **{**FAST, **kw})


def ev(**delta: Any) -> Event:
    return Event(author="agent", invocation_id="inv", actions=EventActions(state_delta=delta))


def said(text: str) -> Event:
    return Event(
        author="user", invocation_id="inv", content=types.Content(role="user", parts=[types.Part(text=text)])
    )


@pytest.fixture
def server() -> Iterator[RedisServer]:
    srv = RedisServer(
        args=["--enable-debug-command", "yes", "--appendonly", "yes", "--appendfsync", "always"]
    )
    srv.start()
    yield srv
    srv.stop()


async def timed(coro: Any) -> tuple[float, Any]:
    t0 = time.monotonic()
    try:
        result = await coro
    except Exception as exc:
        result = exc
    return time.monotonic() - t0, result


# -- deadlines -------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["sleep", "pause"])
async def test_stalled_server_without_fallback_raises_after_the_deadline(
    server: RedisServer, prefix: str, how: str
) -> None:
    svc = RedisSessionService(settings=settings(server), key_prefix=prefix)
    s = await svc.create_session(app_name=APP, user_id="u")
    thread = stall(server, 2.5, how)
    for call in (
        svc.get_session(app_name=APP, user_id="u", session_id=s.id),
        svc.append_event(s, ev(n=1)),
        svc.list_sessions(app_name=APP, user_id="u"),  # a pipeline
    ):
        took, result = await timed(call)
        assert isinstance(result, RedisUnavailableError), result
        assert took < DEADLINE + 0.3, took
    thread.join()
    await svc.close()


@pytest.mark.parametrize("how", ["sleep", "pause"])
async def test_stalled_server_fails_over_within_deadline_x_threshold(
    server: RedisServer, prefix: str, how: str
) -> None:
    threshold = 2
    svc = FallbackSessionService(
        RedisSessionService(settings=settings(server), key_prefix=prefix),
        failure_threshold=threshold,
        health_check_interval=0.1,
    )
    s = await svc.create_session(app_name=APP, user_id="u", state={"a": 1})
    await svc.append_event(s, ev(n=0))
    thread = stall(server, 3.0, how)
    t0 = time.monotonic()
    waits = []
    others = []
    for i in range(10):  # every call is answered; none waits longer than the deadline
        took, result = await timed(svc.create_session(app_name=APP, user_id="v", state={"i": i}))
        assert not isinstance(result, Exception), result
        others.append(result.id)
        waits.append(took)
    took, _ = await timed(svc.append_event(s, ev(n=1)))
    waits.append(took)
    assert max(waits) < DEADLINE + 0.3, waits
    assert sum(waits) < DEADLINE * threshold + 0.5, waits  # then every call is served from memory at once
    assert svc.state is BreakerState.OPEN and time.monotonic() - t0 < 2.5
    thread.join()
    assert await svc.wait_closed(10)
    stats = svc.get_redis_stats()
    assert stats["written_back"] == 11 and stats["conflicts"] == 0 and stats["failed"] == 0
    check = RedisSessionService(settings=settings(server), key_prefix=prefix)
    got = await check.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert got is not None and [e.state_delta if False else e.actions.state_delta for e in got.events] == [
        {"n": 0},
        {"n": 1},
    ]
    listed = await check.list_sessions(app_name=APP, user_id="v")
    assert sorted(x.id for x in listed.sessions) == sorted(others)
    await check.close()
    await svc.close()


async def test_memory_service_fails_over_on_a_stall(server: RedisServer, prefix: str) -> None:
    svc = FallbackMemoryService(
        RedisMemoryService(settings=settings(server), key_prefix=prefix),
        failure_threshold=1,
        health_check_interval=0.1,
    )
    thread = stall(server, 2.0)
    took, result = await timed(
        svc.add_events_to_memory(app_name=APP, user_id="u", events=[said("the quokka")])
    )
    assert result is None and took < DEADLINE + 0.3
    took, hits = await timed(svc.search_memory(app_name=APP, user_id="u", query="quokka"))
    assert took < 0.1 and len(hits.memories) == 1
    thread.join()
    assert await svc.wait_closed(10)
    assert len((await svc.redis.search_memory(app_name=APP, user_id="u", query="quokka")).memories) == 1
    await svc.close()


# -- write-back never stops on a record ------------------------------------------------------------
class _Interfering(RedisSessionService):
    """Lets another writer append to a session right after the write-back has read it."""

    def __init__(self, *args: Any, interfere: dict[str, Event], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.interfere = interfere
        self.other: RedisSessionService | None = None

    async def get_session(self, **kw: Any) -> Session | None:  # type: ignore[override]
        got = await super().get_session(**kw)
        event = self.interfere.pop(kw["session_id"], None)
        if got is not None and event is not None and self.other is not None:
            theirs = await self.other.get_session(
                app_name=got.app_name, user_id=got.user_id, session_id=got.id
            )
            assert theirs is not None
            await self.other.append_event(theirs, event)
        return got


async def _outage_with_two_sessions(
    server: RedisServer, svc: FallbackSessionService
) -> tuple[Session, Session, Session]:
    """s1 (appended to in memory), s2 (created in memory), and a session made only in Redis later."""
    s1 = await svc.create_session(app_name=APP, user_id="u")
    await svc.append_event(s1, ev(a=1))
    server.kill()
    await svc.append_event(s1, ev(x=1))  # fails over: memory holds s1 from now on
    await svc.append_event(s1, ev(y=2))
    s2 = await svc.create_session(app_name=APP, user_id="u", state={"k": "v"})
    await svc.append_event(s2, ev(z=3))
    assert svc.state is BreakerState.OPEN
    return s1, s2, s1


async def test_write_back_meets_a_stale_session_and_goes_on(server: RedisServer, prefix: str) -> None:
    interval = 0.2
    redis = _Interfering(settings=settings(server), key_prefix=prefix, interfere={})
    svc = FallbackSessionService(redis, failure_threshold=1, health_check_interval=interval)
    s1, s2, _ = await _outage_with_two_sessions(server, svc)
    # Right after the write-back reads s1, another process writes "x" (a key of an outage event) into it.
    redis.interfere[s1.id] = ev(x=99, w=5)
    server.start()
    redis.other = RedisSessionService(settings=settings(server), key_prefix=prefix)
    assert await svc.wait_closed(10)
    stats = svc.get_redis_stats()
    assert stats["breaker_state"] == "closed" and stats["pending_write_back"] == 0
    assert stats["conflicts"] == 1 and svc.conflicts[0].keys == ("x",) and stats["failed"] == 0
    assert stats["health_restarts"] == 0
    got = await redis.other.get_session(app_name=APP, user_id="u", session_id=s1.id)
    assert got is not None
    # theirs on top of the stored event, then the outage's non-conflicting event; theirs kept for "x".
    assert [e.actions.state_delta for e in got.events] == [{"a": 1}, {"x": 99, "w": 5}, {"y": 2}]
    assert got.state["x"] == 99 and got.state["y"] == 2
    got2 = await redis.other.get_session(app_name=APP, user_id="u", session_id=s2.id)
    assert got2 is not None and got2.state == {"k": "v", "z": 3}
    # Redis is serving again: a session made only in Redis is visible, later writes reach Redis.
    only = await redis.other.create_session(app_name=APP, user_id="u")
    assert await svc.get_session(app_name=APP, user_id="u", session_id=only.id) is not None
    fresh = await svc.get_session(app_name=APP, user_id="u", session_id=s2.id)
    assert fresh is not None
    await svc.append_event(fresh, ev(later=1))
    again = await redis.other.get_session(app_name=APP, user_id="u", session_id=s2.id)
    assert again is not None and again.state["later"] == 1
    await redis.other.close()
    await svc.close()


async def test_write_back_meets_corrupted_data_and_goes_on(server: RedisServer, prefix: str) -> None:
    interval = 0.5
    svc = FallbackSessionService(
        RedisSessionService(settings=settings(server), key_prefix=prefix),
        failure_threshold=1,
        health_check_interval=interval,
    )
    s1 = await svc.create_session(app_name=APP, user_id="u")
    await svc.append_event(s1, ev(a=1))
    # Plant an undecodable event record in s1's Redis copy (persisted: appendfsync always).
    with server.client() as raw:
        raw.lset(svc.redis.keys.session(APP, "u", s1.id).log, 0, b"1:{not json")
    server.kill()
    await svc.append_event(s1, ev(x=1))  # memory takes s1 over
    s2 = await svc.create_session(app_name=APP, user_id="u", state={"k": "v"})
    await svc.append_event(s2, ev(z=3))
    assert svc.state is BreakerState.OPEN
    server.start()
    other = RedisSessionService(settings=settings(server), key_prefix=prefix)
    only = await other.create_session(app_name=APP, user_id="w")  # exists only in Redis
    t0 = time.monotonic()
    while True:  # during the outage: RedisUnavailableError (it may exist); half-open on: from Redis
        with contextlib.suppress(RedisUnavailableError):
            if await svc.get_session(app_name=APP, user_id="w", session_id=only.id) is not None:
                break
        assert time.monotonic() - t0 < 2 * interval, "Redis-only session not visible in two health intervals"
        await asyncio.sleep(0.02)
    assert await svc.wait_closed(2 * interval)
    stats = svc.get_redis_stats()
    assert stats["breaker_state"] == "closed" and stats["pending_write_back"] == 0
    assert stats["failed"] == 1 and "CorruptedDataError" in svc.failed[0].reason
    record = svc.failed[0].record
    assert isinstance(record, Session) and record.id == s1.id and len(record.events) == 2  # memory's copy
    got2 = await other.get_session(app_name=APP, user_id="u", session_id=s2.id)
    assert got2 is not None and got2.state == {"k": "v", "z": 3}
    later = await svc.create_session(app_name=APP, user_id="u")
    assert await other.get_session(app_name=APP, user_id="u", session_id=later.id) is not None
    await other.close()
    await svc.close()


async def test_write_back_merges_on_top_of_other_writers(server: RedisServer, prefix: str) -> None:
    """Events of the outage go on top of what another process stored meanwhile; only overlapping ones are
    reported, each with its key(s)."""
    svc = FallbackSessionService(
        RedisSessionService(settings=settings(server), key_prefix=prefix),
        failure_threshold=1,
        health_check_interval=60,  # the test drives the write-back
    )
    s = await svc.create_session(app_name=APP, user_id="u")
    await svc.append_event(s, ev(base=0))
    server.kill()
    outage = [ev(a=1), ev(b=2, **{"user:lang": "fr"}), ev(c=3)]
    for e in outage:
        await svc.append_event(s, e)
    server.start()
    other = RedisSessionService(settings=settings(server), key_prefix=prefix)
    theirs = await other.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert theirs is not None
    await other.append_event(theirs, ev(d=4))
    await other.append_event(theirs, ev(**{"user:lang": "de"}))
    assert await svc.core.check()
    got = await other.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert got is not None
    assert [e.id for e in got.events] == [
        got.events[0].id,
        *[e.id for e in theirs.events[-2:]],
        outage[0].id,
        outage[2].id,
    ]
    assert (
        got.state["user:lang"] == "de"
        and got.state["a"] == 1
        and got.state["c"] == 3
        and "b" not in got.state
    )
    assert [(c.event.id if c.event else None, c.keys) for c in svc.conflicts] == [
        (outage[1].id, ("user:lang",))
    ]
    assert svc.state is BreakerState.CLOSED and svc.get_redis_stats()["written_back"] == 1
    # The caller's object memory served is caught up to Redis and keeps appending (reject policy).
    await svc.append_event(s, ev(e=5))
    final = await other.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert final is not None and [e.id for e in s.events] == [e.id for e in final.events]
    assert s.state == final.state and final.state["e"] == 5
    await other.close()
    await svc.close()


# -- the health loop never dies --------------------------------------------------------------------
async def test_health_loop_survives_unexpected_errors_and_counts_them(prefix: str) -> None:
    server = fakeredis.FakeServer()
    redis = RedisSessionService(client=fakeredis.FakeAsyncRedis(server=server), key_prefix=prefix)
    calls = {"n": 0}
    real_ping = redis.ping

    async def flaky_ping() -> bool:  # a bug in the probe: the loop must survive it
        calls["n"] += 1
        if 2 <= calls["n"] <= 4:
            raise RuntimeError("a bug in the probe")
        return await real_ping()

    redis.ping = flaky_ping  # type: ignore[method-assign]
    svc = FallbackSessionService(redis, failure_threshold=1, health_check_interval=0.02)
    server.connected = False
    s = await svc.create_session(app_name=APP, user_id="u")
    assert svc.state is BreakerState.OPEN
    while calls["n"] < 1:  # the first probe fails (Redis down) as usual
        await asyncio.sleep(0.01)
    server.connected = True
    assert await svc.wait_closed(5)
    assert svc.get_redis_stats()["health_restarts"] == 3
    assert await redis.get_session(app_name=APP, user_id="u", session_id=s.id) is not None
    await svc.close()


# -- loop independence -----------------------------------------------------------------------------
def test_services_work_from_several_event_loops(server: RedisServer, prefix: str) -> None:
    """Built at module level (no loop), then used from separate asyncio.run() calls."""
    sessions = RedisSessionService(settings=settings(server), key_prefix=prefix)
    memory = RedisMemoryService(settings=settings(server), key_prefix=prefix)
    fallback = FallbackSessionService(
        RedisSessionService(settings=settings(server), key_prefix=prefix), health_check_interval=0.05
    )

    async def turn(i: int) -> tuple[int, int, int]:
        s = await sessions.create_session(app_name=APP, user_id="u", session_id=f"s{i}")
        await sessions.append_event(s, ev(i=i))
        await memory.add_events_to_memory(app_name=APP, user_id="u", events=[said(f"turn number {i} quokka")])
        f = await fallback.create_session(app_name=APP, user_id="f")
        await fallback.append_event(f, ev(i=i))
        listed = await sessions.list_sessions(app_name=APP, user_id="u")
        hits = await memory.search_memory(app_name=APP, user_id="u", query="quokka")
        flisted = await fallback.list_sessions(app_name=APP, user_id="f")
        return len(listed.sessions), len(hits.memories), len(flisted.sessions)

    assert asyncio.run(turn(0)) == (1, 1, 1)
    assert asyncio.run(turn(1)) == (2, 2, 2)
    assert asyncio.run(turn(2)) == (3, 3, 3)
    assert fallback.state is BreakerState.CLOSED and fallback.get_redis_stats()["fallback_operations"] == 0

    async def close() -> None:
        await sessions.close()
        await memory.close()
        await fallback.close()

    asyncio.run(close())


async def test_memory_write_back_sets_a_bad_record_aside_and_goes_on(
    server: RedisServer, prefix: str
) -> None:
    """A memory write that Redis refuses at write-back (a planted key of the wrong type) is set aside with
    the reason; the other users' writes are written back and the breaker closes."""
    svc = FallbackMemoryService(
        RedisMemoryService(settings=settings(server), key_prefix=prefix),
        failure_threshold=1,
        health_check_interval=0.1,
    )
    with server.client() as raw:  # the bad user's index statistics are a string (persisted: AOF always)
        raw.set(svc.redis.keys.user_memory_index(APP, "bad").stats, "garbage")
    server.kill()
    await svc.add_events_to_memory(app_name=APP, user_id="bad", events=[said("the quokka")], session_id="s")
    await svc.add_events_to_memory(app_name=APP, user_id="good", events=[said("the wombat")], session_id="s")
    assert svc.state is BreakerState.OPEN
    server.start()
    assert await svc.wait_closed(10)
    stats = svc.get_redis_stats()
    assert stats["failed"] == 1 and stats["written_back"] == 1 and stats["pending_write_back"] == 0
    assert svc.failed[0].key == (APP, "bad") and svc.failed[0].op == "add_events_to_memory"
    assert svc.failed[0].reason
    hits = await svc.search_memory(app_name=APP, user_id="good", query="wombat")
    assert len(hits.memories) == 1
    await svc.close()
