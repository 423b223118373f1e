"""Honest outcomes with the DEFAULT settings: a create and an append cut by the operation deadline (a
``DEBUG SLEEP`` longer than it) raise RedisOutcomeUnknownError; the server runs them when it wakes; the
application's retry of the same calls succeeds and everything is stored once."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
from google.adk.events.event import Event
from google.genai import types

from adk_redis import RedisOutcomeUnknownError, RedisSessionService, RedisUnavailableError, load_settings
from adk_redis.config import RedisSettings

from .servers import redis_server

APP = "app"


def said(text: str) -> Event:
    return Event(
        author="user", invocation_id="inv", content=types.Content(role="user", parts=[types.Part(text=text)])
    )


def test_default_socket_timeout_is_below_the_deadline() -> None:
    defaults = RedisSettings()
    assert defaults.redis_operation_timeout == 5.0
    assert defaults.redis_socket_timeout == 2.0  # redis-py can retry a lost reply within the deadline
    assert load_settings(redis_operation_timeout=0).redis_socket_timeout == 5.0  # no deadline
    assert load_settings(redis_socket_timeout=3).redis_socket_timeout == 3.0  # explicit wins


async def test_create_and_append_across_a_stall_longer_than_the_deadline() -> None:
    with redis_server(["--enable-debug-command", "yes"]) as server:
        prefix = "o" + uuid.uuid4().hex[:8]
        svc = RedisSessionService(settings=load_settings(redis_url=server.url, redis_key_prefix=prefix))
        assert svc.settings.redis_operation_timeout == 5.0 and svc.settings.redis_socket_timeout == 2.0
        held = await svc.create_session(app_name=APP, user_id="u", session_id="b")
        # the append script loaded (else the stalled EVALSHA meets NOSCRIPT when the server wakes)
        other = await svc.create_session(app_name=APP, user_id="w", session_id="w")
        await svc.append_event(other, said("warm"))
        # two pooled connections, so both stalled commands are sent (not stuck connecting)
        await asyncio.gather(*(svc.get_session(app_name=APP, user_id="u", session_id=s) for s in "xy"))
        event = said("hello")

        sleeper = server.client(socket_timeout=30)
        thread = threading.Thread(target=lambda: sleeper.execute_command("DEBUG", "SLEEP", 7))
        thread.start()
        time.sleep(0.2)
        start = time.monotonic()
        created, appended = await asyncio.gather(
            svc.create_session(app_name=APP, user_id="u", session_id="a", state={"k": 1}),
            svc.append_event(held, event),
            return_exceptions=True,
        )
        took = time.monotonic() - start
        for exc in (created, appended):
            assert isinstance(exc, RedisOutcomeUnknownError), repr(exc)
            assert isinstance(exc, RedisUnavailableError) and isinstance(exc, ConnectionError)
            assert "may have landed" in str(exc) and "retrying the same call is safe" in str(exc)
        assert took < 5 + 2, took  # the deadline, not the stall
        thread.join()
        sleeper.close()

        # the server ran both when it woke: the outcome really was unknown
        assert await svc.get_session(app_name=APP, user_id="u", session_id="a") is not None
        stored_b = await svc.get_session(app_name=APP, user_id="u", session_id="b")
        assert stored_b is not None and [e.id for e in stored_b.events] == [event.id]

        # the application retries the same calls: both succeed, nothing is stored twice
        again = await svc.create_session(app_name=APP, user_id="u", session_id="a", state={"k": 1})
        assert again.id == "a" and again.state["k"] == 1
        await svc.append_event(held, event)
        stored_b = await svc.get_session(app_name=APP, user_id="u", session_id="b")
        assert stored_b is not None and [e.id for e in stored_b.events] == [event.id]
        listed = await svc.list_sessions(app_name=APP, user_id="u")
        assert sorted(s.id for s in listed.sessions) == ["a", "b"]
        # and the retried create's session takes appends
        await svc.append_event(again, said("after"))
        stored_a = await svc.get_session(app_name=APP, user_id="u", session_id="a")
        assert stored_a is not None and len(stored_a.events) == 1
        # a second create of the same id (not a retry) is still refused
        from google.adk.errors.already_exists_error import AlreadyExistsError

        with pytest.raises(AlreadyExistsError):
            await svc.create_session(app_name=APP, user_id="u", session_id="a")
        await svc.close()
