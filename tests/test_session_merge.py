"""stale_policy="merge": concurrent writers through stale session objects (fakeredis and a real server)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
from google.adk.errors import StaleSessionError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.session import Session
from google.genai import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adk_redis import RedisSessionService
from adk_redis.errors import MergeConflictError
from tests.helpers import drop_prefix as _drop_prefix


def ev(text: str, delta: dict[str, Any] | None = None, *, eid: str | None = None) -> Event:
    kw: dict[str, Any] = {"id": eid} if eid else {}
    return Event(
        author="user",
        invocation_id="inv",
        content=types.Content(role="user", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=dict(delta or {})),
        **kw,
    )


@pytest.fixture(params=["fakeredis", "redis"])
async def merge_service(
    request: pytest.FixtureRequest, prefix: str, redis_url: str
) -> AsyncIterator[RedisSessionService]:
    if request.param == "fakeredis":
        yield RedisSessionService(client=fakeredis.FakeAsyncRedis(), key_prefix=prefix, stale_policy="merge")
        return
    svc = RedisSessionService(redis_url, key_prefix=prefix, stale_policy="merge")
    yield svc
    await _drop_prefix(svc.client, prefix)
    await svc.close()


async def stored(svc: RedisSessionService, s: Session) -> Session:
    got = await svc.get_session(app_name=s.app_name, user_id=s.user_id, session_id=s.id)
    assert got is not None
    return got


def same(obj: Session, st_: Session) -> None:
    """The caller's object equals storage: events (ids, order), state, marker."""
    assert [e.id for e in obj.events] == [e.id for e in st_.events]
    assert {k: v for k, v in obj.state.items() if not k.startswith("temp:")} == st_.state
    assert obj._storage_update_marker == st_._storage_update_marker
    assert obj.last_update_time == st_.last_update_time


async def test_disjoint_writers_merge_and_catch_up(merge_service: RedisSessionService) -> None:
    svc = merge_service
    s = await svc.create_session(app_name="app", user_id="u", state={"base": 0})
    a, b = copy.deepcopy(s), copy.deepcopy(s)
    for i in range(3):
        await svc.append_event(a, ev(f"a{i}", {f"a{i}": i, "user:ua": i}))
    e = ev("b", {"b": 1, "app:seen": True, "temp:t": "kept"})
    await svc.append_event(b, e)  # b is 3 revisions behind: merged, not rejected
    st_ = await stored(svc, s)
    same(b, st_)
    assert [x.id for x in b.events][-1] == e.id
    assert st_.state == {"base": 0, "a0": 0, "a1": 1, "a2": 2, "b": 1, "user:ua": 2, "app:seen": True}
    assert b.state["temp:t"] == "kept"
    # both objects keep working: a is now behind b's event
    await svc.append_event(a, ev("a-again", {"a3": 3}))
    await svc.append_event(b, ev("b-again", {"b2": 2}))
    same(b, await stored(svc, s))
    assert len((await stored(svc, s)).events) == 6


async def test_conflict_names_keys_and_stores_nothing(merge_service: RedisSessionService) -> None:
    svc = merge_service
    s = await svc.create_session(app_name="app", user_id="u")
    a, b = copy.deepcopy(s), copy.deepcopy(s)
    await svc.append_event(a, ev("a", {"x": 1, "user:lang": "fr", "free": 1}))
    before = await stored(svc, s)
    late = ev("b", {"x": 2, "user:lang": "de", "mine": 1})
    with pytest.raises(MergeConflictError) as info:
        await svc.append_event(b, late)
    assert isinstance(info.value, StaleSessionError)
    assert set(info.value.keys) == {"x", "user:lang"}
    assert "'x'" in str(info.value) and "'user:lang'" in str(info.value)
    after = await stored(svc, s)
    assert [e.id for e in after.events] == [e.id for e in before.events]
    assert after.state == before.state and "mine" not in after.state
    assert b.events == [] and b._storage_update_marker == "0"  # the object is untouched


async def test_app_key_conflict(merge_service: RedisSessionService) -> None:
    svc = merge_service
    s = await svc.create_session(app_name="app", user_id="u")
    a, b = copy.deepcopy(s), copy.deepcopy(s)
    await svc.append_event(a, ev("a", {"app:mode": "x"}))
    with pytest.raises(MergeConflictError) as info:
        await svc.append_event(b, ev("b", {"app:mode": "y"}))
    assert info.value.keys == ("app:mode",)


async def test_reject_policy_is_unchanged_and_overridable(redis_session_service: RedisSessionService) -> None:
    svc = redis_session_service
    assert svc.stale_policy == "reject"
    s = await svc.create_session(app_name="app", user_id="u")
    a, b = copy.deepcopy(s), copy.deepcopy(s)
    await svc.append_event(a, ev("a", {"x": 1}))
    with pytest.raises(StaleSessionError) as info:
        await svc.append_event(b, ev("b", {"y": 1}))
    assert not isinstance(info.value, MergeConflictError)
    await svc.append_event(b, ev("b", {"y": 1}), stale_policy="merge")  # per call (write-back)
    same(b, await stored(svc, s))
    with pytest.raises(ValueError, match="stale_policy"):
        await svc.append_event(b, ev("c"), stale_policy="bogus")  # type: ignore[arg-type]


async def test_redelivery_after_merge_with_lost_reply(merge_service: RedisSessionService) -> None:
    svc = merge_service
    s = await svc.create_session(app_name="app", user_id="u")
    a, b = copy.deepcopy(s), copy.deepcopy(s)
    await svc.append_event(a, ev("a", {"a": 1}))
    e = ev("b", {"b": 1})
    # the first attempt is stored, but its reply never reaches the caller's object
    await svc.append_event(copy.deepcopy(b), copy.deepcopy(e))
    await svc.append_event(a, ev("a2", {"a2": 1}))  # and someone writes after it
    got = await svc.append_event(b, e)  # the retry
    assert got is e
    st_ = await stored(svc, s)
    assert [x.id for x in st_.events].count(e.id) == 1
    same(b, st_)
    # an exact re-delivery through an up-to-date object changes nothing
    await svc.append_event(b, copy.deepcopy(e))
    assert len((await stored(svc, s)).events) == 3


async def test_untracked_sessions_reject_until_tracked(
    merge_service: RedisSessionService,
) -> None:
    """Records stored before merge existed have no w.<key> fields: a stale append is rejected
    (nothing proves it safe) until an append starts the tracking."""
    svc = merge_service
    s = await svc.create_session(app_name="app", user_id="u")
    meta = svc.keys.session("app", "u", s.id).meta
    await svc.client.hdel(meta, "_m")
    a, b = copy.deepcopy(s), copy.deepcopy(s)
    await svc.append_event(a, ev("a", {"a": 1}))  # starts tracking at revision 0... from now on
    assert (await svc.client.hget(meta, "_m")) in (b"0", "0")
    await svc.client.hdel(meta, "_m")
    await svc.append_event(a, ev("a2", {"a2": 1}))  # tracking starts at revision 1
    with pytest.raises(StaleSessionError):
        await svc.append_event(b, ev("b", {"b": 1}))  # marker 0 predates the tracking
    b = await stored(svc, s)
    await svc.append_event(a, ev("a3", {"a3": 1}))
    await svc.append_event(b, ev("b", {"b": 1}))  # marker 2 >= 1: merged
    same(b, await stored(svc, s))


async def test_restored_sessions_merge(merge_service: RedisSessionService) -> None:
    svc = merge_service
    src = Session(id="r1", app_name="app", user_id="u", state={"k": 1}, events=[ev("old", {"k": 1})])
    src.last_update_time = src.events[0].timestamp
    assert await svc.restore_session(src, created=src.last_update_time - 5)
    assert not await svc.restore_session(src)  # never overwrites
    a, b = await stored(svc, src), await stored(svc, src)
    await svc.append_event(a, ev("a", {"a": 1}))
    await svc.append_event(b, ev("b", {"b": 1}))
    same(b, await stored(svc, src))


# -- property: N writers, random deltas, arbitrary interleaving --------------------------------------

KEYS = ["x", "y", "z", "user:p", "app:q"]
step = st.tuples(st.integers(0, 3), st.lists(st.sampled_from(KEYS), max_size=2, unique=True), st.booleans())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=25))
async def test_property_interleaved_writers(steps: list[tuple[int, list[str], bool]], redis_url: str) -> None:
    await _run_property(steps, RedisSessionService(client=fakeredis.FakeAsyncRedis(), stale_policy="merge"))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=25))
async def test_property_interleaved_writers_real_server(
    steps: list[tuple[int, list[str], bool]], redis_url: str, prefix: str
) -> None:
    svc = RedisSessionService(redis_url, key_prefix=prefix, stale_policy="merge")
    try:
        await _run_property(steps, svc)
    finally:
        await _drop_prefix(svc.client, prefix)
        await svc.close()


async def _run_property(steps: list[tuple[int, list[str], bool]], svc: RedisSessionService) -> None:
    """Writer w appends an event writing ``keys`` (or first reloads when ``reload``)."""
    s = await svc.create_session(app_name=f"app-{uuid.uuid4().hex}", user_id="u")  # fresh app/user state
    writers = [copy.deepcopy(s) for _ in range(4)]
    acked: list[Event] = []
    rejected: list[Event] = []
    last_ok: dict[int, int] = {}
    for n, (w, keys, reload) in enumerate(steps):
        if reload:
            writers[w] = await stored(svc, s)
        e = ev(f"{w}-{n}", {k: n for k in keys})
        marker = int(writers[w]._storage_update_marker or 0)
        try:
            await svc.append_event(writers[w], e)
        except MergeConflictError as exc:
            rejected.append(e)
            # a conflict names only keys of this event that were written after the marker
            assert exc.keys and set(exc.keys) <= set(keys)
            stored_events = (await stored(svc, s)).events
            later = stored_events[marker:]
            assert all(any(k in (x.actions.state_delta or {}) for x in later) for k in exc.keys)
            continue
        acked.append(e)
        last_ok[w] = n
        same(writers[w], await stored(svc, s))
    final = await stored(svc, s)
    ids = [e.id for e in final.events]
    assert sorted(ids) == sorted(e.id for e in acked)  # every acknowledged event exactly once
    assert not set(ids) & {e.id for e in rejected}  # no rejected one
    replay: dict[str, Any] = {}
    for e in final.events:  # final state = the stored events applied in storage order
        replay.update(e.actions.state_delta or {})
    assert final.state == replay


async def test_huge_deltas_and_many_missed_events(merge_service: RedisSessionService) -> None:
    """Beyond Lua's unpack limit (~8,000 values): a 9,000-key stale delta and 8,500 missed events."""
    svc = merge_service
    s = await svc.create_session(app_name="app", user_id="u")
    a, b = copy.deepcopy(s), copy.deepcopy(s)
    await svc.append_event(a, ev("a", {"z": 1}))
    await svc.append_event(b, ev("b", {f"k{i}": i for i in range(9000)}))
    same(b, await stored(svc, s))
    # 8,500 events stored at once (restore), tracked from revision 0: an object at marker 0 merges
    many = Session(id="many", app_name="app", user_id="u", events=[ev(f"m{i}") for i in range(8500)])
    many.last_update_time = many.events[-1].timestamp
    assert await svc.restore_session(many)
    await svc.client.hset(svc.keys.session("app", "u", "many").meta, "_m", "0")
    behind = await stored(svc, many)
    behind.events, behind._storage_update_marker = [], "0"
    await svc.append_event(behind, ev("late", {"q": 1}))
    same(behind, await stored(svc, many))
    assert len(behind.events) == 8501
