"""CLUSTERDOWN through a real ``redis+cluster://`` client (redis-py's ``RedisCluster``, its own retries
and slot-map refreshes), with the shipped timeouts: session operations raise
:class:`adk_redis.RedisUnavailableError` (``kind="clusterdown"``, or ``"refused"`` for the slots of a
killed node) within the operation deadline.

Throw-away clusters on loopback (tests/servers.py): every primary gives up its slots (``CLUSTER
DELSLOTS``: ``cluster_state:fail`` everywhere, every key answers CLUSTERDOWN), or a primary without a
replica is killed (``cluster-require-full-coverage yes``: the others report CLUSTERDOWN once they mark
it failed).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import redis.exceptions
from google.adk.events.event import Event

from adk_redis import RedisOutcomeUnknownError, RedisSessionService, RedisUnavailableError, load_settings
from adk_redis.config import RedisSettings

from .servers import RedisServer, redis_cluster

APP = "app"
DEADLINE = RedisSettings().redis_operation_timeout  # the shipped default (5 s)


def cluster_failed(nodes: list[RedisServer], timeout: float = 15) -> None:
    give_up = time.monotonic() + timeout
    while True:
        states = []
        for node in nodes:
            if node.proc is None:
                continue
            with node.client() as c:
                info = c.execute_command("CLUSTER", "INFO")
            states.append("cluster_state:fail" in (info.decode() if isinstance(info, bytes) else str(info)))
        if all(states):
            return
        assert time.monotonic() < give_up, "the cluster did not report failure"
        time.sleep(0.05)


async def session_ops(svc: RedisSessionService, sessions: list[Any]) -> list[tuple[str, float, Any]]:
    """get / create / append / list on every user's slot, concurrently: (name, seconds, error)."""

    async def timed(name: str, coro: Any) -> tuple[str, float, Any]:
        start = time.monotonic()
        try:
            await coro
        except Exception as exc:  # noqa: BLE001 - the subject of the test
            return name, time.monotonic() - start, exc
        return name, time.monotonic() - start, None

    calls = []
    for s in sessions:
        calls += [
            timed("get", svc.get_session(app_name=APP, user_id=s.user_id, session_id=s.id)),
            timed("create", svc.create_session(app_name=APP, user_id=s.user_id)),
            timed("append", svc.append_event(s, Event(author="user", invocation_id="i"))),
            timed("list", svc.list_sessions(app_name=APP, user_id=s.user_id)),
        ]
    return list(await asyncio.gather(*calls))


def check(results: list[tuple[str, float, Any]], kinds: set[str]) -> None:
    took = sorted(t for _, t, _ in results)
    print(f"CLUSTERDOWN: {len(took)} calls, {took[0]:.2f}-{took[-1]:.2f} s")  # the docs' figure (-s)
    problems = []
    for name, took, exc in results:
        if not isinstance(exc, RedisUnavailableError):
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        assert isinstance(exc, ConnectionError) and isinstance(exc, redis.exceptions.ConnectionError)
        if exc.kind not in kinds:
            problems.append(f"{name}: kind {exc.kind!r}: {exc}")
        if exc.kind == "clusterdown" and isinstance(exc, RedisOutcomeUnknownError):
            problems.append(f"{name}: a refused command's outcome is known: {exc}")
        if took > DEADLINE + 1.5:  # the deadline plus a loaded machine's margin
            problems.append(f"{name}: took {took:.2f} s")
    assert not problems, "\n".join(problems)


async def test_clusterdown_everywhere_with_default_settings() -> None:
    with redis_cluster(3, node_timeout_ms=500) as nodes:
        url = f"redis+cluster://127.0.0.1:{nodes[0].port}"
        prefix = "cd" + uuid.uuid4().hex[:6]
        svc = RedisSessionService(url, settings=load_settings(redis_url=url, redis_key_prefix=prefix))
        # the same writes with the replica wait (its own cluster routing: adk_redis._core.durability)
        durable = RedisSessionService(
            url, settings=load_settings(redis_url=url, redis_key_prefix=prefix, redis_wait_replicas=1)
        )
        assert svc.settings.redis_operation_timeout == DEADLINE
        sessions = [await svc.create_session(app_name=APP, user_id=f"u{i}") for i in range(4)]
        per = 16384 // 3
        for i, node in enumerate(nodes):
            with node.client() as c:
                last = 16383 if i == 2 else (i + 1) * per - 1
                c.execute_command("CLUSTER", "DELSLOTS", *range(i * per, last + 1))
        cluster_failed(nodes)
        check(await session_ops(svc, sessions), {"clusterdown"})
        writes = [
            ("create", durable.create_session(app_name=APP, user_id="u0")),
            ("append", durable.append_event(sessions[1], Event(author="user", invocation_id="i"))),
        ]
        results = []
        for name, coro in writes:
            start = time.monotonic()
            try:
                await coro
                results.append((name, time.monotonic() - start, None))
            except Exception as exc:  # noqa: BLE001
                results.append((name, time.monotonic() - start, exc))
        check(results, {"clusterdown"})
        await svc.close()
        await durable.close()


async def test_primary_without_replica_killed_with_default_settings() -> None:
    with redis_cluster(3, node_timeout_ms=500) as nodes:
        url = f"redis+cluster://127.0.0.1:{nodes[0].port}"
        svc = RedisSessionService(
            url, settings=load_settings(redis_url=url, redis_key_prefix="ck" + uuid.uuid4().hex[:6])
        )
        sessions = [await svc.create_session(app_name=APP, user_id=f"u{i}") for i in range(6)]
        nodes[1].kill()
        cluster_failed(nodes)
        results = await session_ops(svc, sessions)
        # the dead node's slots: refused; every other slot: CLUSTERDOWN from the surviving primaries
        check(results, {"clusterdown", "refused", "closed"})
        assert {exc.kind for _, _, exc in results} >= {"clusterdown"}
        await svc.close()
