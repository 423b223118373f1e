"""Honest outcomes with the DEFAULT settings: a create and an append cut by the operation deadline (a
``DEBUG SLEEP`` longer than it) raise RedisOutcomeUnknownError; the server runs them when it wakes; the
application's retry of the same calls succeeds and everything is stored once."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import pytest

from adk_redis import RedisOutcomeUnknownError, RedisSessionService, RedisUnavailableError, load_settings
from adk_redis.config import RedisSettings

from .helpers import text_event as said
from .servers import redis_server

APP = "app"


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


def _shipped(field: str) -> Any:
    """A setting's shipped default (not the environment's value)."""
    return RedisSettings.model_fields[field].default


async def test_killed_server_fails_fast_with_the_shipped_timeouts() -> None:
    """No timeout overrides: after ``kill -9`` every service raises RedisUnavailableError within about a
    second (a refused connection is retried with backoff, not waited out): sessions, memory, the
    design API's store (its fallback off, so that it raises instead of serving from memory)."""
    from adk_redis import RedisMemoryService, create_session_store

    timing = ("redis_operation_timeout", "redis_connect_timeout", "redis_retry_attempts")
    with redis_server() as server:
        prefix = "k" + uuid.uuid4().hex[:8]
        settings = load_settings(redis_url=server.url, redis_key_prefix=prefix)
        for field in timing:  # (the socket timeout is derived from the deadline: checked above)
            assert getattr(settings, field) == _shipped(field), field
        sessions = RedisSessionService(settings=settings)
        memory = RedisMemoryService(settings=settings)
        held = await sessions.create_session(app_name=APP, user_id="u", session_id="s")
        held = await sessions.append_event(held, said("otters hold hands")) and held
        stored = await sessions.get_session(app_name=APP, user_id="u", session_id="s")
        assert stored is not None
        await memory.add_session_to_memory(stored)
        assert (await memory.search_memory(app_name=APP, user_id="u", query="otters")).memories
        store = await asyncio.to_thread(
            create_session_store, settings=settings.model_copy(update={"redis_fallback_to_memory": False})
        )
        try:
            await asyncio.to_thread(store.ensure_session, "d1", user_id="u")
            server.kill()  # pooled connections now lead to a dead server

            async def timed(name: str, call: Any) -> tuple[str, float, BaseException | None]:
                start = time.monotonic()
                try:
                    await call
                except BaseException as exc:  # noqa: BLE001 - the subject of the test
                    return name, time.monotonic() - start, exc
                return name, time.monotonic() - start, None

            message = {"role": "user", "content": "hi"}
            calls: list[tuple[str, Any]] = [
                ("get_session", sessions.get_session(app_name=APP, user_id="u", session_id="s")),
                ("append_event", sessions.append_event(held, said("more"))),
                ("create_session", sessions.create_session(app_name=APP, user_id="u")),
                ("search_memory", memory.search_memory(app_name=APP, user_id="u", query="otters")),
                ("add_session_to_memory", memory.add_session_to_memory(stored)),
                ("design_add_message", asyncio.to_thread(store.add_message, "d1", message)),
                ("design_ensure_session", asyncio.to_thread(store.ensure_session, "d2", user_id="u")),
            ]
            results = [await timed(name, call) for name, call in calls]  # one after the other
        finally:
            await asyncio.to_thread(store.close)
        await sessions.close()
        await memory.close()
    print("killed-server timings:", {name: round(took, 3) for name, took, _ in results})
    problems = [
        f"{name}: {type(exc).__name__}: {exc}"
        for name, _, exc in results
        if not isinstance(exc, RedisUnavailableError)
    ]
    problems += [f"{name}: {took:.2f} s" for name, took, _ in results if took > 1.0 + 0.75]  # ~1 s + load
    assert not problems, "\n".join(problems)
