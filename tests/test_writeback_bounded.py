"""Bounded write-back (issue 17, item 1) against real servers killed and restarted.

Each conflicting event is recorded once, holding its event (not a copy of the session); the memory held
by conflicts grows linearly with them and is capped: past the cap they spill to a Redis list, or to a
JSON-lines file when Redis refuses them, never dropped; a write-back converges and the breaker closes
while the application keeps appending to the same session.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions

from adk_redis import RedisSessionService, load_settings
from adk_redis.resilience._fallback import BreakerState, FallbackSessionService

from .helpers import FAST_FAILURE as FAST
from .helpers import delta_event as ev
from .servers import AOF_ALWAYS, RedisServer, redis_server

APP = "app"


@pytest.fixture
def aof_server() -> Iterator[RedisServer]:
    with redis_server(AOF_ALWAYS) as server:
        yield server


def service(server: RedisServer, prefix: str, **kw: Any) -> FallbackSessionService:
    redis = RedisSessionService(server.url, settings=load_settings(**FAST), key_prefix=prefix)
    kw.setdefault("health_check_interval", 3600)
    return FallbackSessionService(redis, failure_threshold=1, **kw)


async def outage(
    server: RedisServer, svc: FallbackSessionService, n: int, sid: str = "s", every: int = 1
) -> tuple[Any, list[str], RedisSessionService]:
    """A session taken over by memory with ``n`` events writing ``n`` (and one in ``every``-1 others
    writing a key of their own); after the restart another writer changes ``n`` in Redis, so each of the
    ``n`` events writing it conflicts.  Returns the session, those events' ids, the other writer."""
    s = await svc.create_session(app_name=APP, user_id="u", session_id=sid)
    await svc.append_event(s, ev(n=0))
    server.kill()
    ids = []
    for i in range(n * every):
        if i % every == 0:
            ids.append((await svc.append_event(s, ev(n=i, pad="x" * 200))).id)
        else:
            await svc.append_event(s, ev(**{f"k{i}": i}))
    assert svc.state is BreakerState.OPEN
    server.start()
    other = RedisSessionService(server.url, settings=load_settings(**FAST), key_prefix=svc.redis.keys.prefix)
    theirs = await other.get_session(app_name=APP, user_id="u", session_id=sid)
    assert theirs is not None
    await other.append_event(theirs, ev(n=-1))
    return s, ids, other


async def test_each_conflict_recorded_once_while_the_application_keeps_writing(
    aof_server: RedisServer, prefix: str
) -> None:
    svc = service(aof_server, prefix, health_check_interval=0.05)
    s, ids, other = await outage(aof_server, svc, 300, every=2)  # the others are written: awaits
    acked = list(ids)
    stop = False

    async def writer() -> None:  # keeps appending to the very session being written back
        j = 0
        while not stop:
            acked.append((await svc.append_event(s, ev(n=1000 + j))).id)
            j += 1
            await asyncio.sleep(0.001)

    t0 = time.monotonic()
    task = asyncio.create_task(writer())
    closed = await svc.wait_closed(15)
    took = time.monotonic() - t0
    await asyncio.sleep(0.2)  # the writer goes on against Redis
    stop = True
    await task
    assert closed, svc.get_redis_stats()
    assert took < 10, took
    conflicted = [c.event.id for c in svc.conflicts if c.event]
    assert len(conflicted) == len(set(conflicted))  # never recorded twice
    assert set(ids) <= set(conflicted)  # every outage event writes "n", which the other writer changed
    assert all(c.keys == ("n",) for c in svc.conflicts)
    stored = await other.get_session(app_name=APP, user_id="u", session_id="s")
    assert stored is not None
    stored_ids = [e.id for e in stored.events]
    assert len(stored_ids) == len(set(stored_ids))
    assert not set(conflicted) & set(stored_ids)  # reported or stored, never both
    assert set(acked) <= set(stored_ids) | set(conflicted)  # and never lost
    assert len(acked) > len(ids)  # the writer really wrote during and after the write-back
    stats = svc.get_redis_stats()
    assert stats["conflicts"] == len(conflicted) and stats["failed"] == 0
    await other.close()
    await svc.close()


async def _retained_by_conflicts(server: RedisServer, prefix: str, n: int) -> int:
    svc = service(server, prefix)
    _, _, other = await outage(server, svc, n, sid=f"s{n}")
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    await svc.write_back()
    svc._handed_over.clear()  # the Redis copy kept for callers' objects is not the conflicts' memory
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(svc.conflicts) == n
    await other.close()
    await svc.close()
    return held


async def test_memory_held_by_conflicts_grows_linearly(aof_server: RedisServer, prefix: str) -> None:
    """Each conflict holds one event: 4x the conflicts hold about 4x the memory (a copy of the session per
    conflict, as before, held 16x: 90,300 event copies for 300 conflicts)."""
    small = await _retained_by_conflicts(aof_server, prefix, 100)
    large = await _retained_by_conflicts(aof_server, prefix, 400)
    assert large < 6 * max(small, 1), (small, large)
    assert large < 400 * 20_000, large  # well under a session copy per conflict (~400 x 400 events)


async def test_conflicts_past_the_cap_spill_to_redis_and_can_be_drained(
    aof_server: RedisServer, prefix: str
) -> None:
    svc = service(aof_server, prefix, max_conflicts=3)
    _, ids, other = await outage(aof_server, svc, 10)
    await svc.write_back()
    assert svc.state is not BreakerState.OPEN or not svc.core.pending()
    stats = svc.get_redis_stats()
    assert stats["conflicts"] == 10 and stats["conflicts_held"] == 3 and stats["conflicts_spilled_redis"] == 7
    assert await other.client.llen(other.keys.writeback_conflicts(APP)) == 7
    read = await svc.read_conflicts(app_name=APP)
    assert [c.event.id for c in read if c.event] == ids  # every one, in order, the spilled decoded
    assert [c.place for c in read] == ["memory"] * 3 + ["redis"] * 7
    assert all(c.keys == ("n",) and c.session_id == "s" and c.user_id == "u" for c in read)
    assert (await svc.read_conflicts(app_name="another-app")) == []
    first = await svc.drain_conflicts(app_name=APP, limit=5)
    rest = await svc.drain_conflicts(app_name=APP)
    assert [c.event.id for c in first + rest if c.event] == ids
    assert await svc.read_conflicts(app_name=APP) == [] and svc.conflicts == []
    assert await other.client.exists(other.keys.writeback_conflicts(APP)) == 0
    await other.close()
    await svc.close()


async def test_conflicts_redis_refuses_spill_to_the_file(
    aof_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "conflicts.jsonl"
    svc = service(aof_server, prefix, max_conflicts=2, conflicts_file=str(path))
    _, ids, other = await outage(aof_server, svc, 6)
    # A key of the wrong type where the list goes: Redis answers WRONGTYPE, the file takes them.
    await other.client.set(other.keys.writeback_conflicts(APP), "planted")
    await svc.write_back()
    stats = svc.get_redis_stats()
    assert stats["conflicts_held"] == 2 and stats["conflicts_spilled_file"] == 4, stats
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [x["session"] for x in lines] == ["s"] * 4 and all(x["keys"] == ["n"] for x in lines)
    await other.client.delete(other.keys.writeback_conflicts(APP))
    read = await svc.read_conflicts(app_name=APP)
    assert [c.event.id for c in read if c.event] == ids and read[-1].place == "file"
    drained = await svc.drain_conflicts(app_name=APP)
    assert [c.event.id for c in drained if c.event] == ids
    assert path.read_text() == ""
    await other.close()
    await svc.close()


async def test_half_open_sends_new_work_to_redis(aof_server: RedisServer, prefix: str) -> None:
    """While the journal is written back (half-open), a session memory does not hold goes to Redis, so
    the journal does not grow and the breaker closes."""
    svc = service(aof_server, prefix)
    a = await svc.create_session(app_name=APP, user_id="u", session_id="a")
    b = await svc.create_session(app_name=APP, user_id="u", session_id="b")
    aof_server.kill()
    await svc.append_event(a, ev(x=1))
    aof_server.start()
    svc.breaker.half_open()
    await svc.append_event(b, ev(y=1))  # not memory's: straight to Redis
    assert not svc.core.pending(("session", ("app", "u", "b")))
    assert svc.core.pending(("session", ("app", "u", "a")))
    got = await svc.redis.get_session(app_name=APP, user_id="u", session_id="b")
    assert got is not None and got.state["y"] == 1
    assert await svc.core.check() and svc.state is BreakerState.CLOSED
    await svc.close()


async def test_lww_write_back_stores_every_outage_event_and_keeps_the_latest(
    aof_server: RedisServer, prefix: str
) -> None:
    """With stale_policy="lww" the write-back reports no conflict: every outage event is stored and each
    key keeps the value of its latest-timestamped write (the other writer's lands in the middle)."""
    redis = RedisSessionService(
        aof_server.url, settings=load_settings(**FAST), key_prefix=prefix, stale_policy="lww"
    )
    svc = FallbackSessionService(redis, failure_threshold=1, health_check_interval=3600)
    t0 = time.time()

    def at(ts: float, **delta: Any) -> Event:
        return Event(author="a", invocation_id="i", timestamp=ts, actions=EventActions(state_delta=delta))

    s = await svc.create_session(app_name=APP, user_id="u", session_id="s")
    await svc.append_event(s, at(t0, n=-100, m=-100))
    aof_server.kill()
    ids = []
    for i in range(10):
        ids.append((await svc.append_event(s, at(t0 + 1 + i, n=i, **({"m": i} if i < 5 else {})))).id)
    aof_server.start()
    other = RedisSessionService(aof_server.url, settings=load_settings(**FAST), key_prefix=prefix)
    theirs = await other.get_session(app_name=APP, user_id="u", session_id="s")
    assert theirs is not None
    await other.append_event(theirs, at(t0 + 7.5, n="theirs", m="theirs"))
    await svc.write_back()
    assert svc.get_redis_stats()["conflicts"] == 0 and svc.conflicts == []
    stored = await other.get_session(app_name=APP, user_id="u", session_id="s")
    assert stored is not None and set(ids) <= {e.id for e in stored.events}
    assert stored.state["n"] == 9  # the outage's last write (t0+10) is later than theirs (t0+7.5)
    assert stored.state["m"] == "theirs"  # theirs is later than the outage's last "m" (t0+5)
    await svc.append_event(s, at(time.time(), k=1))  # the caller's object goes on against Redis
    assert s.state["n"] == 9 and s.state["m"] == "theirs"
    await other.close()
    await svc.close()


async def test_a_write_back_cut_by_an_outage_resumes_without_reporting_twice(
    aof_server: RedisServer, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = service(aof_server, prefix)
    _, ids, other = await outage(aof_server, svc, 6, every=2)  # 6 conflicting, 6 to write
    real = svc.redis.append_event
    calls = 0

    async def cut_once(*args: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:  # Redis goes away again in the middle of the write-back
            raise ConnectionError("connection reset")
        return await real(*args, **kw)

    monkeypatch.setattr(svc.redis, "append_event", cut_once)
    with pytest.raises(ConnectionError):
        await svc.write_back()
    reported = [c.event.id for c in svc.conflicts if c.event]
    assert 0 < len(reported) < 6 and svc.core.pending()
    await svc.write_back()  # resumes where it stopped
    reported = [c.event.id for c in svc.conflicts if c.event]
    assert reported == ids  # each once, in order
    stored = await other.get_session(app_name=APP, user_id="u", session_id="s")
    assert stored is not None and len(stored.events) == 2 + 6  # before + theirs, then the 6 others once
    assert len({e.id for e in stored.events}) == len(stored.events)
    await other.close()
    await svc.close()
