"""The session record layout (format 2) and the in-place upgrade of format-1 records.

Format 1 kept events in a HASH (``<seq> -> payload``, ``#<id> -> seq``) and a ZSET of
timestamps; format 2 keeps a LIST of payloads, a HASH id -> seq and a LIST of timestamps
(:mod:`adk_redis.sessions._layout`).  Records written by earlier releases are planted here
exactly as the format-1 scripts wrote them.
"""

from __future__ import annotations

from typing import Any

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from adk_redis import RedisSessionService
from adk_redis._core.codec import text


def _event(i: int, ts: float, **delta: Any) -> Event:
    return Event(
        id=f"e{i}",
        invocation_id=f"inv{i}",
        author="user" if i % 2 == 0 else "agent",
        timestamp=ts,
        content=types.Content(role="user", parts=[types.Part(text=f"message {i}")]),
        actions=EventActions(state_delta=delta),
    )


async def _plant_format1(
    svc: RedisSessionService, sid: str, events: list[Event], state: dict[str, str], ttl_ms: int = 0
) -> None:
    """Write a session as the format-1 scripts did (CREATE + APPEND, same fields)."""
    c, sk = svc.client, svc.keys.session("app", "u", sid)
    n = len(events)
    upd = repr(events[-1].timestamp) if events else "1000.0"
    await c.hset(
        sk.meta,
        mapping={
            "_c": "1000.0",
            "_u": upd,
            "_r": str(n),
            "_n": str(n),
            "_l": events[-1].id if events else "",
            "_v": "1",
            "_t": "tok",
            "_m": "0",
            **{f"s.{k}": v for k, v in state.items()},
        },
    )
    for seq, ev in enumerate(events):
        await c.hset(sk.legacy_events, mapping={str(seq): svc.codec.encode_event(ev), f"#{ev.id}": str(seq)})
        await c.zadd(sk.legacy_times, {str(seq): ev.timestamp})
    await c.zadd(svc.keys.user_index("app", "u"), {svc.keys.session_member(sid): float(upd)})
    await c.zadd(svc.keys.app_index("app"), {svc.keys.app_index_member("u", sid): float(upd)})
    if ttl_ms:
        for key in (sk.meta, sk.legacy_events, sk.legacy_times):
            await c.pexpire(key, ttl_ms)


async def test_format1_record_is_read_and_upgraded_in_place(
    redis_session_service: RedisSessionService,
) -> None:
    svc = redis_session_service
    events = [_event(i, 1000.0 + i, turn=i) for i in range(5)]
    await _plant_format1(svc, "old", events, {"turn": "4", "topic": '"billing"'}, ttl_ms=600_000)
    sk = svc.keys.session("app", "u", "old")

    got = await svc.get_session(app_name="app", user_id="u", session_id="old")
    assert got is not None
    assert [e.id for e in got.events] == [e.id for e in events]
    assert got.events == events
    assert got.state == {"turn": 4, "topic": "billing"}
    # upgraded: format 2 keys, legacy keys gone, the TTL carried over
    c = svc.client
    assert text(await c.hget(sk.meta, "_v")) == "2"
    assert not await c.exists(sk.legacy_events) and not await c.exists(sk.legacy_times)
    assert [text(p) for p in await c.lrange(sk.log, 0, -1)] == [svc.codec.encode_event(e) for e in events]
    ids = {text(k): text(v) for k, v in (await c.hgetall(sk.ids)).items()}
    assert ids == {f"e{i}": str(i) for i in range(5)}
    assert [float(text(t)) for t in await c.lrange(sk.times, 0, -1)] == [e.timestamp for e in events]
    for key in (sk.log, sk.ids, sk.times):
        assert 0 < await c.pttl(key) <= 600_000

    # the filters work on the upgraded record, and a re-delivery of an old event is recognised
    recent = await svc.get_session(
        app_name="app", user_id="u", session_id="old", config=GetSessionConfig(num_recent_events=2)
    )
    assert recent is not None and [e.id for e in recent.events] == ["e3", "e4"]
    after = await svc.get_session(
        app_name="app", user_id="u", session_id="old", config=GetSessionConfig(after_timestamp=1002.0)
    )
    assert after is not None and [e.id for e in after.events] == ["e2", "e3", "e4"]
    await svc.append_event(got, events[4].model_copy(deep=True))
    await svc.append_event(got, _event(5, 1005.0, turn=5))
    final = await svc.get_session(app_name="app", user_id="u", session_id="old")
    assert final is not None and [e.id for e in final.events] == [f"e{i}" for i in range(6)]
    assert final.state["turn"] == 5


async def test_append_upgrades_a_format1_record(redis_session_service: RedisSessionService) -> None:
    """An append through a session object loaded before the upgrade (an older process) upgrades too."""
    svc = redis_session_service
    events = [_event(i, 2000.0 + i) for i in range(3)]
    await _plant_format1(svc, "old2", events, {})
    session = await svc.get_session(app_name="app", user_id="u", session_id="old2")
    assert session is not None
    # plant it again (as if another process still wrote format 1), then append through the object
    await svc.delete_session(app_name="app", user_id="u", session_id="old2")
    await _plant_format1(svc, "old2", events, {})
    await svc.append_event(session, events[2].model_copy(deep=True))  # re-delivery: nothing stored
    await svc.append_event(session, _event(3, 2003.0))
    got = await svc.get_session(app_name="app", user_id="u", session_id="old2")
    assert got is not None and [e.id for e in got.events] == ["e0", "e1", "e2", "e3"]
    assert not await svc.client.exists(svc.keys.session("app", "u", "old2").legacy_events)


async def test_format1_record_with_a_missing_event_is_a_data_error(
    redis_session_service: RedisSessionService,
) -> None:
    import pytest

    from adk_redis.errors import CorruptedDataError

    svc = redis_session_service
    events = [_event(i, 3000.0 + i) for i in range(3)]
    await _plant_format1(svc, "holes", events, {})
    await svc.client.hdel(svc.keys.session("app", "u", "holes").legacy_events, "1")
    with pytest.raises(CorruptedDataError, match="holes"):
        await svc.get_session(app_name="app", user_id="u", session_id="holes")
    # the other events keep their positions: the last two are still the last two
    recent = await svc.get_session(
        app_name="app", user_id="u", session_id="holes", config=GetSessionConfig(num_recent_events=1)
    )
    assert recent is not None and [e.id for e in recent.events] == ["e2"]


async def test_after_timestamp_with_out_of_order_timestamps(
    redis_session_service: RedisSessionService,
) -> None:
    """Events whose timestamps are not in append order: every event at or after the timestamp, in
    append order (what the format-1 ZSET filter returned)."""
    svc = redis_session_service
    s = await svc.create_session(app_name="app", user_id="u", session_id="ooo")
    for i, ts in enumerate([5.0, 3.0, 7.0, 4.0, 9.0]):
        await svc.append_event(s, _event(i, ts))
    got = await svc.get_session(
        app_name="app", user_id="u", session_id="ooo", config=GetSessionConfig(after_timestamp=4.5)
    )
    assert got is not None and [e.id for e in got.events] == ["e0", "e2", "e4"]
    got = await svc.get_session(
        app_name="app",
        user_id="u",
        session_id="ooo",
        config=GetSessionConfig(after_timestamp=4.0, num_recent_events=3),
    )
    assert got is not None and [e.id for e in got.events] == ["e2", "e3", "e4"]
    got = await svc.get_session(
        app_name="app", user_id="u", session_id="ooo", config=GetSessionConfig(after_timestamp=100.0)
    )
    assert got is not None and got.events == []


async def test_format2_keys_and_delete(redis_session_service: RedisSessionService) -> None:
    svc = redis_session_service
    s = await svc.create_session(app_name="app", user_id="u", session_id="k")
    for i in range(3):
        await svc.append_event(s, _event(i, 10.0 + i))
    sk = svc.keys.session("app", "u", "k")
    c = svc.client
    assert await c.llen(sk.log) == 3 and await c.llen(sk.times) == 3 and await c.hlen(sk.ids) == 3
    assert not await c.exists(sk.legacy_events) and not await c.exists(sk.legacy_times)
    await svc.delete_session(app_name="app", user_id="u", session_id="k")
    assert not await c.exists(*sk.all)


async def test_migrate_rewrites_format1_records(redis_session_service: RedisSessionService) -> None:
    """``adk-redis migrate`` (its backfill step) rewrites every format-1 record; a re-run rewrites none."""
    from adk_redis.admin.migrate import backfill_created_index

    svc = redis_session_service
    for sid in ("m1", "m2"):
        await _plant_format1(svc, sid, [_event(i, 4000.0 + i) for i in range(3)], {"k": '"v"'})
    fresh = await svc.create_session(app_name="app", user_id="u", session_id="m3")
    await svc.append_event(fresh, _event(0, 5000.0))
    stats = await backfill_created_index(svc)
    assert stats.upgraded == 2
    for sid in ("m1", "m2"):
        sk = svc.keys.session("app", "u", sid)
        assert text(await svc.client.hget(sk.meta, "_v")) == "2"
        assert await svc.client.llen(sk.log) == 3 and not await svc.client.exists(sk.legacy_events)
    assert (await backfill_created_index(svc)).upgraded == 0
    got = await svc.get_session(app_name="app", user_id="u", session_id="m1")
    assert got is not None and [e.id for e in got.events] == ["e0", "e1", "e2"] and got.state == {"k": "v"}
    assert not await svc.upgrade_record(app_name="app", user_id="u", session_id="nope")
