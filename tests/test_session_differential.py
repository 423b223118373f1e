"""Hypothesis stateful differential test: random create/append/get/list/delete
sequences give the same observable results on RedisSessionService as on ADK's
InMemorySessionService."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import fakeredis
import hypothesis.strategies as st
import pytest
import redis
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.platform import time as platform_time
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.genai import types
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from adk_redis import RedisSessionService

APPS = st.sampled_from(["app", "a:b", "{x}"])
USERS = st.sampled_from(["u1", "u*2", "用户"])
SIDS = st.sampled_from(["s1", "s 2", "s:3", "*"])
KEYS = st.sampled_from(["k", "n", "app:g", "app:h", "user:p", "user:q", "temp:t"])
VALUES = st.one_of(
    st.integers(-10, 10),
    st.text(max_size=5),
    st.none(),
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), st.booleans(), max_size=2),
)
STATES = st.dictionaries(KEYS, VALUES, max_size=4)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def normalize(session: Any) -> Any:
    if session is None:
        return None
    return (
        session.app_name,
        session.user_id,
        session.id,
        session.state,
        session.last_update_time,
        [(e.id, e.author, e.timestamp, e.content, e.actions.state_delta) for e in session.events],
    )


class DifferentialMachine(RuleBasedStateMachine):
    make_ours: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = Clock()
        platform_time.set_time_provider(self.clock)
        self.ref = InMemorySessionService()
        self.ours = type(self).make_ours()
        self.known: set[tuple[str, str, str]] = set()
        self.live: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def both(self, op: str, **kwargs: Any) -> tuple[Any, Any]:
        results = []
        for svc in (self.ref, self.ours):
            try:
                results.append(("ok", self.run(getattr(svc, op)(**kwargs))))
            except (AlreadyExistsError, SessionNotFoundError) as exc:
                results.append(("err", type(exc).__name__))
        assert results[0][0] == results[1][0], (op, kwargs, results)
        if results[0][0] == "err":
            assert results[0][1] == results[1][1]
            return None, None
        return results[0][1], results[1][1]

    def tick(self) -> None:
        self.clock.now += 1.25

    @initialize()
    def setup(self) -> None:
        pass

    @rule(app=APPS, user=USERS, sid=SIDS, state=STATES)
    def create(self, app: str, user: str, sid: str, state: dict[str, Any]) -> None:
        self.tick()
        ref, ours = self.both("create_session", app_name=app, user_id=user, session_id=sid, state=state)
        if ref is not None:
            assert normalize(ref) == normalize(ours)
            self.known.add((app, user, sid))
            self.live[(app, user, sid)] = (ref, ours)

    @precondition(lambda self: bool(self.known))
    @rule(data=st.data(), delta=STATES, reload=st.booleans(), text=st.text(max_size=8))
    def append(self, data: st.DataObject, delta: dict[str, Any], reload: bool, text: str) -> None:
        key = data.draw(st.sampled_from(sorted(self.known)))
        app, user, sid = key
        if reload or key not in self.live:
            ref, ours = self.both("get_session", app_name=app, user_id=user, session_id=sid)
            if ref is None and ours is None:
                self.live.pop(key, None)
                return
            self.live[key] = (ref, ours)
        ref_s, our_s = self.live[key]
        self.tick()
        event = Event(
            author="user",
            invocation_id="i",
            content=types.Content(role="user", parts=[types.Part(text=text)]),
            actions=EventActions(state_delta=delta),
        )
        event.timestamp = self.clock.now
        results = []
        for svc, s in ((self.ref, ref_s), (self.ours, our_s)):
            try:
                self.run(svc.append_event(s, event.model_copy(deep=True)))
                results.append("ok")
            except SessionNotFoundError:
                results.append("missing")
        assert results[0] == results[1]
        assert ref_s.state == our_s.state
        assert [e.id for e in ref_s.events] == [e.id for e in our_s.events]

    @precondition(lambda self: bool(self.known))
    @rule(
        data=st.data(),
        recent=st.one_of(st.none(), st.integers(0, 4)),
        after=st.one_of(st.none(), st.integers(0, 12)),
    )
    def get(self, data: st.DataObject, recent: int | None, after: int | None) -> None:
        app, user, sid = data.draw(st.sampled_from(sorted(self.known)))
        config = GetSessionConfig(
            num_recent_events=recent,
            after_timestamp=None if after is None else 1_700_000_000.0 + after * 1.25,
        )
        ref, ours = self.both("get_session", app_name=app, user_id=user, session_id=sid, config=config)
        assert normalize(ref) == normalize(ours)

    @rule(app=APPS, user=st.one_of(st.none(), USERS))
    def list(self, app: str, user: str | None) -> None:
        ref, ours = self.both("list_sessions", app_name=app, user_id=user)
        assert [normalize(s) for s in ref.sessions] == [normalize(s) for s in ours.sessions]

    @precondition(lambda self: bool(self.known))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        app, user, sid = data.draw(st.sampled_from(sorted(self.known)))
        self.both("delete_session", app_name=app, user_id=user, session_id=sid)

    @rule(app=APPS, user=USERS)
    def user_state(self, app: str, user: str) -> None:
        ref, ours = self.both("get_user_state", app_name=app, user_id=user)
        assert ref == ours

    @invariant()
    def nothing(self) -> None:
        pass

    def teardown(self) -> None:
        if isinstance(self.ours.client, fakeredis.FakeAsyncRedis):
            self.loop.close()
        else:

            async def drop() -> None:
                keys = [k async for k in self.ours.client.scan_iter(match=f"{self.ours.keys.prefix}:*")]
                if keys:
                    await self.ours.client.delete(*keys)
                await self.ours.close()

            self.run(drop())
            self.loop.close()
        platform_time.reset_time_provider()


def test_differential_fakeredis() -> None:
    class M(DifferentialMachine):
        make_ours = staticmethod(
            lambda: RedisSessionService(
                client=fakeredis.FakeAsyncRedis(), key_prefix=f"h{uuid.uuid4().hex[:8]}"
            )
        )

    M.TestCase.settings = settings(
        max_examples=int(os.environ.get("DIFF_EXAMPLES", "60")),
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    M.TestCase().runTest()


def test_differential_real_server(redis_url: str) -> None:
    redis.Redis.from_url(redis_url).ping()

    class M(DifferentialMachine):
        make_ours = staticmethod(
            lambda: RedisSessionService(redis_url, key_prefix=f"h{uuid.uuid4().hex[:8]}")
        )

    M.TestCase.settings = settings(
        max_examples=int(os.environ.get("DIFF_EXAMPLES", "25")),
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    M.TestCase().runTest()


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
