"""stale_policy="merge" across real OS processes on a real server: disjoint writers never fail,
a read-modify-write counter is applied exactly or rejected naming the key."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from typing import Any

from adk_redis import RedisSessionService
from adk_redis.errors import MergeConflictError
from tests.helpers import chat_event
from tests.servers import start_together


def _event(text: str, delta: dict[str, Any]) -> Any:
    return chat_event("user", text, delta)


PROCESSES = 8
APPENDS = 200
INCREMENTS = 40


def disjoint_writer(url: str, prefix: str, session_id: str, wid: int, start_at: float) -> dict[str, int]:
    """APPENDS appends through one session object loaded once; never reloads."""

    async def main() -> dict[str, int]:
        svc = RedisSessionService(url, key_prefix=prefix, stale_policy="merge")
        session = await svc.get_session(app_name="app", user_id="u", session_id=session_id)
        assert session is not None
        await start_together(svc.client, f"{prefix}:test:barrier1", PROCESSES, start_at)
        errors = caught_up = 0
        for j in range(APPENDS):
            before = len(session.events)
            try:
                await svc.append_event(session, _event(f"w{wid}-{j}", {f"w{wid}": j}))
            except Exception:  # noqa: BLE001 - the test counts every failure
                errors += 1
            caught_up += len(session.events) - before - 1
        await svc.close()
        return {"errors": errors, "caught_up": caught_up}

    return asyncio.run(main())


def counter_writer(url: str, prefix: str, session_id: str, start_at: float) -> dict[str, int]:
    """Read-modify-write of one shared key through a session object; reload after a conflict."""

    async def main() -> dict[str, int]:
        svc = RedisSessionService(url, key_prefix=prefix, stale_policy="merge")
        session = await svc.get_session(app_name="app", user_id="u", session_id=session_id)
        assert session is not None
        await start_together(svc.client, f"{prefix}:test:barrier2", PROCESSES, start_at)
        acked = rejected = 0
        for j in range(INCREMENTS):
            value = int(session.state.get("counter", 0)) + 1
            try:
                await svc.append_event(session, _event(f"inc{j}", {"counter": value}))
                acked += 1
            except MergeConflictError as exc:
                assert exc.keys == ("counter",), exc.keys
                rejected += 1
                reloaded = await svc.get_session(app_name="app", user_id="u", session_id=session_id)
                assert reloaded is not None
                session = reloaded
        await svc.close()
        return {"acked": acked, "rejected": rejected}

    return asyncio.run(main())


async def test_disjoint_writers_all_stored(redis_url: str, prefix: str, real_client: Any) -> None:
    svc = RedisSessionService(redis_url, key_prefix=prefix, stale_policy="merge")
    s = await svc.create_session(app_name="app", user_id="u")
    with mp.get_context("spawn").Pool(PROCESSES) as pool:
        results = pool.starmap(
            disjoint_writer, [(redis_url, prefix, s.id, w, time.time() + 60) for w in range(PROCESSES)]
        )
    got = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None
    assert sum(r["errors"] for r in results) == 0
    assert len(got.events) == PROCESSES * APPENDS == len({e.id for e in got.events})
    texts = [e.content.parts[0].text for e in got.events]
    for w in range(PROCESSES):
        assert [t for t in texts if t.startswith(f"w{w}-")] == [f"w{w}-{j}" for j in range(APPENDS)]
        assert got.state[f"w{w}"] == APPENDS - 1
    assert sum(r["caught_up"] for r in results) > 0  # the writers really were stale and merged
    await svc.close()


async def test_shared_counter_exact(redis_url: str, prefix: str, real_client: Any) -> None:
    svc = RedisSessionService(redis_url, key_prefix=prefix, stale_policy="merge")
    s = await svc.create_session(app_name="app", user_id="u", state={"counter": 0})
    with mp.get_context("spawn").Pool(PROCESSES) as pool:
        results = pool.starmap(counter_writer, [(redis_url, prefix, s.id, time.time() + 60)] * PROCESSES)
    got = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None
    acked = sum(r["acked"] for r in results)
    assert got.state["counter"] == acked == len(got.events)
    assert acked + sum(r["rejected"] for r in results) == PROCESSES * INCREMENTS
    # every stored increment is exactly one more than the one before it
    assert [e.actions.state_delta["counter"] for e in got.events] == list(range(1, acked + 1))
    assert sum(r["rejected"] for r in results) > 0  # they did collide
    await svc.close()
