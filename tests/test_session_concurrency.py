"""Several OS processes append to one session and one user's state at once."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from typing import Any

from google.adk.errors import StaleSessionError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.genai import types

from adk_redis import RedisSessionService
from tests.servers import start_together

WORKERS = 4
APPENDS = 40


def _event(text: str, delta: dict[str, Any]) -> Event:
    return Event(
        author="user",
        invocation_id="inv",
        content=types.Content(role="user", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=delta),
    )


def worker(url: str, prefix: str, session_id: str, own_session: str, wid: int, start_at: float) -> int:
    """Append APPENDS events to the shared session (re-reading on StaleSessionError)
    and APPENDS to an own session that writes the shared user state."""

    async def main() -> int:
        svc = RedisSessionService(url, key_prefix=prefix)
        await svc.ping()
        await start_together(svc.client, f"{prefix}:test:barrier", WORKERS, start_at)
        retries = 0
        session = await svc.get_session(app_name="app", user_id="u", session_id=session_id)
        own = await svc.get_session(app_name="app", user_id="u", session_id=own_session)
        assert session is not None and own is not None
        for j in range(APPENDS):
            while True:
                try:
                    await svc.append_event(
                        session, _event(f"w{wid}-{j}", {f"w{wid}_{j}": j, "app:last": wid})
                    )
                    break
                except StaleSessionError:
                    retries += 1
                    session = await svc.get_session(app_name="app", user_id="u", session_id=session_id)
                    assert session is not None
            # the only writer of `own`: its up-to-date object never goes stale
            await svc.append_event(own, _event(f"own{wid}-{j}", {f"user:w{wid}_{j}": j}))
        await svc.close()
        return retries

    return asyncio.run(main())


async def test_processes_lose_nothing(redis_url: str, prefix: str, real_client: Any) -> None:
    svc = RedisSessionService(redis_url, key_prefix=prefix)
    shared = await svc.create_session(app_name="app", user_id="u", session_id="shared")
    owns = [
        await svc.create_session(app_name="app", user_id="u", session_id=f"own{i}") for i in range(WORKERS)
    ]
    ctx = mp.get_context("spawn")
    with ctx.Pool(WORKERS) as pool:
        retries = pool.starmap(
            worker, [(redis_url, prefix, shared.id, owns[i].id, i, time.time() + 60) for i in range(WORKERS)]
        )
    got = await svc.get_session(app_name="app", user_id="u", session_id=shared.id)
    assert got is not None
    texts = [e.content.parts[0].text for e in got.events]
    assert len(texts) == WORKERS * APPENDS == len(set(texts))
    assert len({e.id for e in got.events}) == WORKERS * APPENDS
    for i in range(WORKERS):
        mine = [t for t in texts if t.startswith(f"w{i}-")]
        assert mine == [f"w{i}-{j}" for j in range(APPENDS)]  # each writer's order kept
        for j in range(APPENDS):
            assert got.state[f"w{i}_{j}"] == j
            assert got.state[f"user:w{i}_{j}"] == j
    user_state = await svc.get_user_state(app_name="app", user_id="u")
    assert len(user_state) == WORKERS * APPENDS
    for own in owns:
        o = await svc.get_session(app_name="app", user_id="u", session_id=own.id)
        assert o is not None and len(o.events) == APPENDS
    assert sum(retries) > 0  # the writers really did race
    await svc.close()
