"""stale_policy="lww" (last writer wins, issue 17 item 4): every append is stored, a stale one too; per
state key the value of the write with the later event timestamp is kept (ties: the later-stored one).
On a real server and fakeredis; a hypothesis interleaving test against the model "last timestamp per key".
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import hypothesis.strategies as st
import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from hypothesis import HealthCheck, given, settings

from adk_redis import RedisSessionService, load_settings

from .helpers import drop_prefix as _drop_prefix

APP = "app"
T0 = 1_700_000_000.0


def ev(ts: float, **delta: Any) -> Event:
    return Event(author="agent", invocation_id="inv", timestamp=ts, actions=EventActions(state_delta=delta))


@pytest.fixture(params=["fakeredis", "redis"])
async def lww(
    request: pytest.FixtureRequest, prefix: str, redis_url: str
) -> AsyncIterator[RedisSessionService]:
    if request.param == "fakeredis":
        yield RedisSessionService(client=fakeredis.FakeAsyncRedis(), key_prefix=prefix, stale_policy="lww")
        return
    svc = RedisSessionService(redis_url, key_prefix=prefix, stale_policy="lww")
    yield svc
    await _drop_prefix(svc.client, prefix)
    await svc.close()


async def test_stale_append_is_stored_and_the_later_timestamp_keeps_the_key(lww: RedisSessionService) -> None:
    s = await lww.create_session(app_name=APP, user_id="u", session_id="s")
    a = await lww.get_session(app_name=APP, user_id="u", session_id="s")
    b = await lww.get_session(app_name=APP, user_id="u", session_id="s")
    assert a is not None and b is not None
    await lww.append_event(a, ev(T0 + 2, k="a", user_last="a", **{"user:last": "a", "app:last": "a"}))
    # b is stale and its event is older: stored, but every key it shares with a keeps a's value
    older = await lww.append_event(b, ev(T0 + 1, k="b", mine="b", **{"user:last": "b", "app:last": "b"}))
    stored = await lww.get_session(app_name=APP, user_id="u", session_id="s")
    assert stored is not None and [e.id for e in stored.events][-1] == older.id and len(stored.events) == 2
    assert stored.state["k"] == "a" and stored.state["user:last"] == "a" and stored.state["app:last"] == "a"
    assert stored.state["mine"] == "b"  # a key nobody else wrote: b's write stands
    # b's object: caught up (a's event first), with storage's state
    assert [e.id for e in b.events] == [e.id for e in stored.events]
    assert {k: b.state[k] for k in ("k", "user:last", "app:last", "mine")} == {
        "k": "a",
        "user:last": "a",
        "app:last": "a",
        "mine": "b",
    }
    # a (now stale) writes with a later timestamp: it wins
    await lww.append_event(a, ev(T0 + 3, k="a3", **{"user:last": "a3"}))
    stored = await lww.get_session(app_name=APP, user_id="u", session_id="s")
    assert stored is not None and stored.state["k"] == "a3" and stored.state["user:last"] == "a3"
    assert a.state["k"] == "a3"
    del s


async def test_equal_timestamps_the_later_stored_wins_and_earlier_ones_lose_even_in_order(
    lww: RedisSessionService,
) -> None:
    s = await lww.create_session(app_name=APP, user_id="u", session_id="s")
    await lww.append_event(s, ev(T0 + 5, k=1))
    await lww.append_event(s, ev(T0 + 5, k=2))  # a tie: the later-stored wins
    assert s.state["k"] == 2
    await lww.append_event(s, ev(T0 + 4, k=3))  # an earlier timestamp loses, even from an up-to-date object
    stored = await lww.get_session(app_name=APP, user_id="u", session_id="s")
    assert stored is not None and stored.state["k"] == 2 and s.state["k"] == 2 and len(stored.events) == 3


async def test_a_retried_stale_append_is_stored_once(lww: RedisSessionService) -> None:
    await lww.create_session(app_name=APP, user_id="u", session_id="s")
    a = await lww.get_session(app_name=APP, user_id="u", session_id="s")
    b = await lww.get_session(app_name=APP, user_id="u", session_id="s")
    assert a is not None and b is not None
    await lww.append_event(a, ev(T0 + 1, k="a"))
    event = ev(T0 + 2, k="b")
    marker = b._storage_update_marker
    await lww.append_event(b, event)
    b.events.pop()  # the reply was lost: the caller retries through the object as it was
    b.events.pop()
    b._storage_update_marker = marker
    await lww.append_event(b, event)
    stored = await lww.get_session(app_name=APP, user_id="u", session_id="s")
    assert stored is not None and [e.id for e in stored.events].count(event.id) == 1
    assert stored.state["k"] == "b" and b.state["k"] == "b"


def test_lww_from_settings_url_and_constructor(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RedisSessionService("redis://127.0.0.1:1?stale_policy=lww").stale_policy == "lww"
    assert RedisSessionService(client=fakeredis.FakeAsyncRedis(), stale_policy="lww").stale_policy == "lww"
    monkeypatch.setenv("SESSION_STALE_POLICY", "lww")
    assert load_settings().session_stale_policy == "lww"
    assert RedisSessionService(client=fakeredis.FakeAsyncRedis()).stale_policy == "lww"


# -- the model: per key, the value of the write with the latest timestamp (ties: the later-stored) --
KEYS = ["a", "b", "user:c", "app:d"]
op = st.tuples(
    st.integers(0, 2),  # writer
    st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True),  # keys it writes
    st.integers(0, 6),  # timestamp (small range: ties happen)
    st.booleans(),  # reload the writer's object first
)


async def _interleave(url: str, ops: list[tuple[int, list[str], int, bool]]) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    svc = RedisSessionService(url, key_prefix=prefix, stale_policy="lww")
    try:
        await svc.create_session(app_name=APP, user_id="u", session_id="s")
        objs = [await svc.get_session(app_name=APP, user_id="u", session_id="s") for _ in range(3)]
        best: dict[str, tuple[int, int, str]] = {}  # key -> (timestamp, order, value)
        for order, (w, keys, ts, reload) in enumerate(ops):
            if reload:
                objs[w] = await svc.get_session(app_name=APP, user_id="u", session_id="s")
            obj = objs[w]
            assert obj is not None
            value = f"{order}"
            await svc.append_event(obj, ev(T0 + ts, **{k: value for k in keys}))
            for k in keys:
                if k not in best or (ts, order) >= best[k][:2]:
                    best[k] = (ts, order, value)
            # the writer's object shows storage's value of each key it wrote
            assert {k: obj.state.get(k) for k in keys} == {k: best[k][2] for k in keys}
        stored = await svc.get_session(app_name=APP, user_id="u", session_id="s")
        assert stored is not None and len(stored.events) == len(ops)  # every append stored
        assert {k: stored.state.get(k) for k in best} == {k: v[2] for k, v in best.items()}
    finally:  # the keys this case wrote (a SCAN of the shared server per example would dominate)
        await svc.delete_session(app_name=APP, user_id="u", session_id="s")
        await svc.client.delete(svc.keys.user_state(APP, "u"), svc.keys.app_state(APP))
        await svc.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=14))
def test_final_state_is_the_latest_timestamp_per_key(redis_url: str, ops: list[Any]) -> None:
    asyncio.run(_interleave(redis_url, ops))
