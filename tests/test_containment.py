"""Containment (issue 17, item 7): planted records of the wrong shape fail only what touches them, with
a typed error naming the broken key; bad input gets a typed ValueError, never a raw Python error.

Each case runs on the real server (REDIS_URL or the embedded one) and on fakeredis.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions

from adk_redis import RedisSessionService
from adk_redis.errors import AdkRedisError, CorruptedDataError, InvalidInputError

from .helpers import drop_prefix as _drop_prefix

APP = "app"


def ev(**delta: Any) -> Event:
    return Event(author="agent", invocation_id="inv", actions=EventActions(state_delta=delta))


@pytest.fixture(params=["redis", "fakeredis"])
async def svc(
    request: pytest.FixtureRequest, prefix: str, redis_url: str
) -> AsyncIterator[RedisSessionService]:
    if request.param == "fakeredis":
        yield RedisSessionService(client=fakeredis.FakeAsyncRedis(), key_prefix=prefix)
        return
    service = RedisSessionService(redis_url, key_prefix=prefix)
    yield service
    await _drop_prefix(service.client, prefix)
    await service.close()


async def test_non_utf8_index_member_is_skipped_by_pages(
    svc: RedisSessionService, caplog: pytest.LogCaptureFixture
) -> None:
    made = [await svc.create_session(app_name=APP, user_id="u", session_id=f"s{n}") for n in range(3)]
    bad = b"u:\xff\xfe"  # not UTF-8: a foreign write into our index
    for index in (svc.keys.app_index(APP), svc.keys.app_created_index(APP)):
        await svc.client.zadd(index, {bad: made[1].last_update_time + 0.5})
    for order in ("updated", "created"):
        seen: list[str] = []
        cursor = None
        with caplog.at_level(logging.WARNING, logger="adk_redis.sessions"):
            for _ in range(10):  # page by page: a cursor right after the bad member works too
                page = await svc.list_sessions_page(app_name=APP, limit=1, cursor=cursor, order=order)
                seen += [s.id for s in page.sessions]
                cursor = page.next_cursor
                if cursor is None:
                    break
        assert sorted(seen) == ["s0", "s1", "s2"], (order, seen)
        assert "undecodable index member" in caplog.text
    listed = await svc.list_sessions(app_name=APP)
    assert sorted(s.id for s in listed.sessions) == ["s0", "s1", "s2"]


@pytest.mark.parametrize("scope", ["app", "user"])
async def test_wrong_type_state_key_fails_only_writes_into_it(svc: RedisSessionService, scope: str) -> None:
    prefix = "app:" if scope == "app" else "user:"
    good = await svc.create_session(app_name=APP, user_id="u", session_id="before", state={"s": 1})
    broken = svc.keys.app_state(APP) if scope == "app" else svc.keys.user_state(APP, "u")
    await svc.client.delete(broken)
    await svc.client.set(broken, "not a hash")

    # reads and creates of the app (and of the user) keep working, the broken scope left out, named
    created = await svc.create_session(app_name=APP, user_id="u", session_id="after", state={"s": 2})
    assert created.state == {"s": 2}
    assert any(broken in note for note in svc.skipped_records), list(svc.skipped_records)
    got = await svc.get_session(app_name=APP, user_id="u", session_id="before")
    assert got is not None and got.state == {"s": 1}
    await svc.append_event(got, ev(s=3))  # an append that does not write the broken key
    listed = await svc.list_sessions(app_name=APP, user_id="u")
    assert sorted(s.id for s in listed.sessions) == ["after", "before"]

    # a write into the broken key: typed, names the key, writes nothing
    before = await svc.get_session(app_name=APP, user_id="u", session_id="before")
    assert before is not None
    with pytest.raises(CorruptedDataError) as info:
        await svc.append_event(before, ev(**{prefix + "k": 1}))
    assert broken in str(info.value) and "'before'" in str(info.value)
    again = await svc.get_session(app_name=APP, user_id="u", session_id="before")
    assert again is not None and len(again.events) == len(before.events) == 1
    with pytest.raises(CorruptedDataError, match=broken):
        await svc.create_session(app_name=APP, user_id="u", session_id="x", state={prefix + "k": 1})
    assert await svc.get_session(app_name=APP, user_id="u", session_id="x") is None
    if scope == "user":  # the one read whose whole answer is the broken key: typed, naming it
        with pytest.raises(CorruptedDataError, match=broken):
            await svc.get_user_state(app_name=APP, user_id="u")
    # another user (app scope: the app's state is broken for everyone; user scope: only this user)
    other = await svc.create_session(app_name=APP, user_id="v", session_id="o", state={"user:z": 1})
    assert other.state.get("user:z") == 1
    assert good.id == "before"


async def test_wrong_type_app_index_names_the_key(svc: RedisSessionService) -> None:
    index = svc.keys.app_index(APP)
    await svc.client.set(index, "not a zset")
    with pytest.raises(CorruptedDataError) as info:
        await svc.create_session(app_name=APP, user_id="u", session_id="new")
    assert index in str(info.value) and "wrong type" in str(info.value)
    assert await svc.get_session(app_name=APP, user_id="u", session_id="new") is None  # nothing written
    # other apps are untouched
    assert (await svc.create_session(app_name="other", user_id="u", session_id="new")).id == "new"


def _deep(depth: int) -> list[Any]:
    root: list[Any] = []
    cur = root
    for _ in range(depth):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    return root


@pytest.mark.parametrize(
    "kwargs",
    [
        {"app_name": "a\ud800", "user_id": "u"},
        {"app_name": APP, "user_id": "u\udc00"},
        {"app_name": APP, "user_id": "u", "session_id": "s\ud800"},
        {"app_name": APP, "user_id": "u", "state": {"k\ud800": 1}},
        {"app_name": APP, "user_id": "u", "state": {"k": "v\udfff"}},
        {"app_name": APP, "user_id": "u", "state": {"user:k": b"\x00\xff"}},
        {"app_name": APP, "user_id": "u", "state": {"k": _deep(3000)}},
    ],
    ids=[
        "app-surrogate",
        "user-surrogate",
        "session-surrogate",
        "key-surrogate",
        "value-surrogate",
        "bytes-value",
        "deep",
    ],
)
async def test_bad_input_to_create_is_typed(svc: RedisSessionService, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as info:
        await svc.create_session(**kwargs)
    assert isinstance(info.value, AdkRedisError), repr(info.value)
    listed = await svc.list_sessions(app_name=APP)
    assert listed.sessions == []  # nothing written


@pytest.mark.parametrize(
    "delta",
    [{"k": "v\ud800"}, {"k": b"\x00\xff"}, {"k": _deep(3000)}, {"app:k\udc00": 1}],
    ids=["value-surrogate", "bytes-value", "deep", "key-surrogate"],
)
async def test_bad_input_to_append_is_typed(svc: RedisSessionService, delta: dict[str, Any]) -> None:
    session = await svc.create_session(app_name=APP, user_id="u", session_id="s")
    with pytest.raises(InvalidInputError):
        await svc.append_event(session, ev(**delta))
    stored = await svc.get_session(app_name=APP, user_id="u", session_id="s")
    assert stored is not None and stored.events == []
    # reads of bad ids are typed too (or None, as for any id the policy refuses)
    assert await svc.get_session(app_name=APP, user_id="u", session_id="s\ud800") is None
    with pytest.raises(InvalidInputError):
        await svc.list_sessions(app_name="a\ud800")
