"""Bad-input fuzzing (hypothesis): odd ids, hostile state, corrupted stored records.

Every failure must be a typed error (ValueError / TypeError / CorruptedDataError /
ADK errors); nothing else escapes, and a sentinel session of another user is
unchanged after every example.  Documented behaviour seen here:

* NaN / +-inf state values round-trip (Python's JSON dialect, like ADK's services);
* values pydantic cannot serialize (``object()``) are stored as their ``repr``
  (ADK's coercion, with a logged warning); sets become lists;
* non-``str`` state keys raise TypeError; nesting beyond pydantic's depth limit
  raises ValueError; invalid UTF-8 ``bytes`` values raise ValueError;
* ids that are not ``str`` raise TypeError, over-long ids ValueError (get/delete
  treat invalid session ids as missing);
* a corrupted or wrongly typed record raises CorruptedDataError for its session
  (listing skips corrupted sessions with a warning).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.session import Session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_core import to_jsonable_python

from adk_redis import RedisSessionService

from .helpers import drop_prefix as _drop_prefix

# CorruptedDataError and ADK's not-found / stale errors are ValueErrors.
TYPED = (ValueError, TypeError, AlreadyExistsError)
SENTINEL_APP = "sentinel-app"


@dataclass
class Env:
    loop: asyncio.AbstractEventLoop
    svc: RedisSessionService
    sentinel: dict[str, Any]
    examples: int

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _snapshot(self) -> dict[str, Any]:
        got = await self.svc.get_session(app_name=SENTINEL_APP, user_id="sentinel", session_id="keep")
        assert got is not None
        return got.model_dump()

    def check_sentinel(self) -> None:
        assert self.run(self._snapshot()) == self.sentinel


@pytest.fixture(params=["fakeredis", "redis"])
def env(request: pytest.FixtureRequest, redis_url: str, prefix: str) -> Iterator[Env]:
    loop = asyncio.new_event_loop()
    if request.param == "fakeredis":
        svc = RedisSessionService(client=fakeredis.FakeAsyncRedis(), key_prefix=prefix)
    else:
        svc = RedisSessionService(redis_url, key_prefix=prefix)

    async def setup() -> dict[str, Any]:
        s = await svc.create_session(
            app_name=SENTINEL_APP, user_id="sentinel", session_id="keep", state={"k": 1, "user:u": "x"}
        )
        await svc.append_event(s, Event(author="a", actions=EventActions(state_delta={"k": 2})))
        got = await svc.get_session(app_name=SENTINEL_APP, user_id="sentinel", session_id="keep")
        assert got is not None
        return got.model_dump()

    e = Env(loop, svc, loop.run_until_complete(setup()), 60 if request.param == "fakeredis" else 15)
    yield e

    async def teardown() -> None:
        if request.param == "redis":
            await _drop_prefix(svc.client, prefix)
        await svc.close()

    loop.run_until_complete(teardown())
    loop.close()


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


ids = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=":{}*?[]%\\'\" \t\n\x00\x7f\u2028é😀", max_size=12),
    st.sampled_from(["", " ", "x" * 5000, "s" * 4096, "../..", "*", "%41", "a:b", "{a}"]),
    st.integers(),
    st.none(),
    st.binary(max_size=6),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.binary(max_size=8),
    st.builds(object),
    st.sampled_from(["x" * 1_000_000, "é" * 300_000]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=12,
)
state_keys = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["app:a", "user:b", "temp:c", "app:", "user:", "s.x", "_n", "_r", "#1"]),
    st.integers(),
    st.tuples(st.text(max_size=3)),
)
states = st.one_of(
    st.dictionaries(state_keys, values, max_size=5),
    st.integers(1, 4000).map(lambda d: {"deep": _nested(d)}),
)


def _same(a: Any, b: Any) -> bool:
    """Equality of stored state with a session's state (NaN == NaN; ADK's JSON coercion applied)."""
    a, b = to_jsonable_python(a, serialize_unknown=True), to_jsonable_python(b, serialize_unknown=True)
    return _eq(a, b)


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_eq(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b))
    return bool(a == b)


async def _exercise_ids(svc: RedisSessionService, app: Any, user: Any, sid: Any) -> None:
    try:
        s = await svc.create_session(app_name=app, user_id=user, session_id=sid, state={"a": 1})
    except TYPED:
        s = None
    if s is not None:
        got = await svc.get_session(app_name=app, user_id=user, session_id=s.id)
        assert got is not None and got.id == s.id and got.state == {"a": 1}
        await svc.append_event(got, Event(author="a", actions=EventActions(state_delta={"b": 2})))
        listed = await svc.list_sessions(app_name=app, user_id=user)
        assert s.id in [x.id for x in listed.sessions]
        await svc.delete_session(app_name=app, user_id=user, session_id=s.id)
        assert await svc.get_session(app_name=app, user_id=user, session_id=s.id) is None
        return
    for op in (
        svc.get_session(app_name=app, user_id=user, session_id=sid),
        svc.list_sessions(app_name=app, user_id=user),
        svc.delete_session(app_name=app, user_id=user, session_id=sid),
        svc.get_user_state(app_name=app, user_id=user),
    ):
        with contextlib.suppress(TYPED):
            await op


def test_fuzz_ids(env: Env) -> None:
    @settings(max_examples=env.examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(app=ids, user=ids, sid=st.one_of(st.none(), ids))
    def run(app: Any, user: Any, sid: Any) -> None:
        if app == SENTINEL_APP:
            return
        env.run(_exercise_ids(env.svc, app, user, sid))
        env.check_sentinel()

    run()


async def _exercise_state(svc: RedisSessionService, state: dict[Any, Any]) -> None:
    app = f"fz-{uuid.uuid4().hex[:8]}"
    try:
        s = await svc.create_session(app_name=app, user_id="u", state=state)
    except TYPED:
        s = await svc.create_session(app_name=app, user_id="u")
    else:
        got = await svc.get_session(app_name=app, user_id="u", session_id=s.id)
        assert got is not None and _same(got.state, s.state)
    try:
        event = Event(author="a", actions=EventActions(state_delta=state))
    except TYPED:
        return  # pydantic rejects the delta (non-str keys) before it reaches us
    try:
        await svc.append_event(s, event)
    except TYPED:
        return
    got = await svc.get_session(app_name=app, user_id="u", session_id=s.id)
    durable = {k: v for k, v in s.state.items() if not k.startswith("temp:")}  # temp: lives in memory only
    assert got is not None and _same(got.state, durable)
    assert [e.id for e in got.events] == [e.id for e in s.events]


def test_fuzz_state(env: Env) -> None:
    @settings(max_examples=env.examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(state=states)
    def run(state: dict[Any, Any]) -> None:
        env.run(_exercise_state(env.svc, state))
        env.check_sentinel()

    run()


CORRUPTIONS = [
    "meta_string",
    "log_string",
    "ids_string",
    "times_string",
    "user_state_list",
    "app_state_string",
    "user_index_hash",
    "app_index_string",
    "event_truncated",
    "event_garbage",
    "event_wrong_version",
    "event_wrong_type",
    "event_missing",
    "meta_n_garbage",
    "meta_u_garbage",
    "meta_r_missing",
    "state_value_garbage",
    "user_value_garbage",
    "app_value_garbage",
    "encrypted_looking",
    "index_member_garbage",
]


async def _corrupt(svc: RedisSessionService, kind: str, junk: bytes) -> tuple[str, Session]:
    c, app = svc.client, f"cz-{uuid.uuid4().hex[:8]}"
    s = await svc.create_session(app_name=app, user_id="u", state={"a": 1, "user:b": 2, "app:c": 3})
    await svc.append_event(s, Event(author="a", actions=EventActions(state_delta={"a": 5})))
    sk = svc.keys.session(app, "u", s.id)
    us, ui, ast, ai = (
        svc.keys.user_state(app, "u"),
        svc.keys.user_index(app, "u"),
        svc.keys.app_state(app),
        svc.keys.app_index(app),
    )
    key_for = {
        "meta": sk.meta,
        "log": sk.log,
        "ids": sk.ids,
        "times": sk.times,
        "app_state": ast,
        "app_index": ai,
    }
    head = kind.rsplit("_", 1)[0]
    if kind.endswith("_string") and head in key_for:
        await c.delete(key_for[head])
        await c.set(key_for[head], junk)
    elif kind == "user_state_list":
        await c.delete(us)
        await c.rpush(us, junk or b"x")
    elif kind == "user_index_hash":
        await c.delete(ui)
        await c.hset(ui, "f", junk)
    elif kind == "event_truncated":
        payload = await c.lindex(sk.log, 0)
        await c.lset(sk.log, 0, payload[: len(payload) // 2])
    elif kind == "event_garbage":
        await c.lset(sk.log, 0, junk)
    elif kind == "event_wrong_version":
        await c.lset(sk.log, 0, b"9:" + junk)
    elif kind == "event_wrong_type":
        await c.lset(sk.log, 0, b'1:{"author": 5, "timestamp": "x"}')
    elif kind == "event_missing":
        await c.ltrim(sk.log, 1, -1)  # the first event record is gone
    elif kind == "meta_n_garbage":
        await c.hset(sk.meta, "_n", junk)
    elif kind == "meta_u_garbage":
        await c.hset(sk.meta, "_u", junk)
    elif kind == "meta_r_missing":
        await c.hdel(sk.meta, "_r")
    elif kind == "state_value_garbage":
        await c.hset(sk.meta, "s.a", junk)
    elif kind == "user_value_garbage":
        await c.hset(us, "b", junk)
    elif kind == "app_value_garbage":
        await c.hset(ast, "c", junk)
    elif kind == "encrypted_looking":
        await c.hset(sk.meta, "s.a", b"2:e:k1:" + junk)
    elif kind == "index_member_garbage":
        await c.zadd(ui, {junk or b"%": 1})
        await c.zadd(ai, {junk or b"%": 1})
    return app, s


async def _exercise_corrupted(svc: RedisSessionService, kind: str, junk: bytes) -> None:
    app, s = await _corrupt(svc, kind, junk)
    for op in (
        lambda: svc.get_session(app_name=app, user_id="u", session_id=s.id),
        lambda: svc.list_sessions(app_name=app, user_id="u"),
        lambda: svc.list_sessions(app_name=app),
        lambda: svc.get_user_state(app_name=app, user_id="u"),
        lambda: svc.append_event(s, Event(author="a", actions=EventActions(state_delta={"a": 6}))),
        lambda: svc.create_session(app_name=app, user_id="u", state={"user:b": 1, "app:c": 1}),
        lambda: svc.delete_session(app_name=app, user_id="u", session_id=s.id),
    ):
        with contextlib.suppress(TYPED):
            await op()
    # Clean up whatever is left of the victim app (only its own keys).
    sk = svc.keys.session(app, "u", s.id)
    await svc.client.delete(
        *sk.all,
        svc.keys.user_state(app, "u"),
        svc.keys.user_index(app, "u"),
        svc.keys.app_state(app),
        svc.keys.app_index(app),
    )


def test_fuzz_corrupted_records(env: Env) -> None:
    @settings(max_examples=env.examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(kind=st.sampled_from(CORRUPTIONS), junk=st.binary(max_size=40))
    def run(kind: str, junk: bytes) -> None:
        env.run(_exercise_corrupted(env.svc, kind, junk))
        env.check_sentinel()

    run()


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_each_corruption_is_typed(env: Env, kind: str) -> None:
    """Every corruption kind at least once, with fixed junk (hypothesis may not draw them all)."""
    for junk in (b"", b"\xff\xfe", b'{"a":'):
        env.run(_exercise_corrupted(env.svc, kind, junk))
    env.check_sentinel()
