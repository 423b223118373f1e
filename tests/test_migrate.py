"""adk-redis migrate (ADK's Redis integration = format v0, in place) and import --from (SQL, Redis).

Legacy data is written by ADK's own services, then read back through our
RedisSessionService and compared with what ADK's service returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.integrations.redis import RedisSessionService as AdkRedisSessionService
from google.adk.integrations.redis import RedisSessionServiceConfig
from google.adk.sessions.base_session_service import BaseSessionService
from google.adk.sessions.database_session_service import DatabaseSessionService
from google.adk.sessions.sqlite_session_service import SqliteSessionService
from google.genai import types

from adk_redis import RedisSessionService
from tests.cli_fixtures import Cli, _drop

Key = tuple[str, str, str]


def _event(author: str, text: str, delta: dict[str, Any]) -> Event:
    return Event(
        author=author,
        invocation_id="inv-1",
        content=types.Content(role="user" if author == "user" else "model", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=delta),
    )


async def populate(svc: BaseSessionService) -> list[Key]:
    """Two apps, three users (one id with ':' and spaces), 7 sessions; app/user/session state."""
    keys: list[Key] = []
    n = 0
    for app, user, count in (("shop", "ann", 3), ("shop", "bob: the 2nd", 2), ("help desk", "ann", 2)):
        for i in range(count):
            sid = f"s{i} {user}" if i == 0 else None
            state = {"topic": f"t{i}", "app:mode": "demo", "user:tier": "gold", "temp:x": 1}
            s = await svc.create_session(app_name=app, user_id=user, state=state, session_id=sid)
            for j in range(i + 1):  # the first session of each user has one event, ...
                n += 1
                await svc.append_event(s, _event("user", f"hello {n}", {"turn": j, "user:visits": n}))
                await svc.append_event(s, _event("agent", f"reply {n}", {"app:total": n, "last": "x"}))
            if i == count - 1:
                await svc.append_event(s, _event("user", "no delta", {}))
            keys.append((app, user, s.id))
    empty = await svc.create_session(app_name="shop", user_id="cy", state={"k": [1, 2]})
    keys.append(("shop", "cy", empty.id))
    return keys


def _events(events: list[Event]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json", exclude_none=True) for e in events]


async def snapshot(svc: BaseSessionService, keys: list[Key]) -> dict[Key, dict[str, Any]]:
    out = {}
    for app, user, sid in keys:
        s = await svc.get_session(app_name=app, user_id=user, session_id=sid)
        assert s is not None
        out[app, user, sid] = {"events": _events(s.events), "state": s.state, "updated": s.last_update_time}
    return out


async def assert_equal(ours: RedisSessionService, expected: dict[Key, dict[str, Any]]) -> None:
    got = await snapshot(ours, list(expected))
    for key, want in expected.items():
        assert got[key]["events"] == want["events"], key
        assert got[key]["state"] == want["state"], key
        assert got[key]["updated"] == pytest.approx(want["updated"], abs=1e-3), key
    for app in {k[0] for k in expected}:
        listed = await ours.list_sessions(app_name=app)
        assert {s.id for s in listed.sessions} >= {k[2] for k in expected if k[0] == app}
    # the migrated sessions are live: appending works (revision/last-id bookkeeping is right)
    app, user, sid = next(iter(expected))
    s = await ours.get_session(app_name=app, user_id=user, session_id=sid)
    assert s is not None
    await ours.append_event(s, _event("user", "after migration", {"after": True}))
    again = await ours.get_session(app_name=app, user_id=user, session_id=sid)
    assert again is not None and len(again.events) == len(expected[app, user, sid]["events"]) + 1


def _adk_redis(cli: Cli, legacy: str) -> tuple[AdkRedisSessionService, Any]:
    if cli.make_client is None:
        client = aioredis.Redis.from_url(cli.url, decode_responses=True)
    else:
        client = cli.make_client()
        client = fakeredis.FakeAsyncRedis(server=client.connection_pool.connection_kwargs["server"])
    return AdkRedisSessionService(RedisSessionServiceConfig(key_prefix=legacy), redis_client=client), client


def _legacy_setup(cli: Cli, legacy: str) -> dict[Key, dict[str, Any]]:
    async def go() -> dict[Key, dict[str, Any]]:
        adk, client = _adk_redis(cli, legacy)
        try:
            keys = await populate(adk)
            await client.set(f"{legacy}junk", "not a session")
            await client.hset(f"{legacy}some:hash", "a", "b")
            return await snapshot(adk, keys)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_migrate_is_resumable_and_idempotent(cli: Cli) -> None:
    legacy = f"{cli.prefix}:adk:session:"  # under our test prefix: dropped with it
    expected = _legacy_setup(cli, legacy)
    total = len(expected)
    code, data = cli.json("migrate", "--legacy-prefix", legacy, "--limit", "3", "--batch", "2")
    assert code == 0 and data["this_run"]["imported"] == 3 and data["done"] is False
    code, data = cli.json("migrate", "--legacy-prefix", legacy, "--limit", "2", "--batch", "3")
    assert data["this_run"]["imported"] == 2 and data["migrated_total"] == 5 and data["done"] is False
    code, out, _ = cli("migrate", "--legacy-prefix", legacy)
    assert code == 0 and f"migrated {total - 5} sessions this run" in out and "migration complete" in out
    code, data = cli.json("migrate", "--legacy-prefix", legacy)
    assert data["done"] is True and data["this_run"]["imported"] == 0 and data["migrated_total"] == total
    assert data["invalid_total"] == 2  # the junk string and the hash under the legacy prefix
    code, data = cli.json("migrate", "--legacy-prefix", legacy, "--restart")
    assert data["this_run"]["imported"] == 0 and data["this_run"]["skipped_existing"] == total
    assert data["done"] is True

    async def check(svc: RedisSessionService) -> None:
        await assert_equal(svc, expected)

    cli.run(check)

    async def count(svc: RedisSessionService) -> int:
        return sum([len((await svc.list_sessions(app_name=a)).sessions) for a in ("shop", "help desk")])

    assert cli.run(count) == total

    # --delete-legacy: the old records go away, ours stay
    code, data = cli.json("migrate", "--legacy-prefix", legacy, "--restart", "--delete-legacy")
    assert code == 0 and data["this_run"]["skipped_existing"] == total

    async def legacy_left(svc: RedisSessionService) -> list[str]:
        return sorted([k.decode() async for k in svc.client.scan_iter(match=f"{legacy}*")])

    assert cli.run(legacy_left) == [f"{legacy}junk", f"{legacy}some:hash"]
    expected.pop(next(iter(expected)))  # that one got an extra event in check()
    cli.run(check)


def test_import_from_adk_redis_integration(cli: Cli, redis_url: str, prefix: str) -> None:
    """Source: ADK's Redis integration on the real server; target: fakeredis or the real server."""
    legacy = f"{prefix}:legacy:"
    source = Cli("redis", redis_url, prefix, None, cli.capsys)
    try:
        expected = _legacy_setup(source, legacy)
        target = prefix + "-copy"
        args = ("import", "--from", redis_url, "--legacy-prefix", legacy)
        code, data = cli.json(*args, prefix=target)
        assert code == 0 and data["imported"] == len(expected) and data["skipped_existing"] == 0
        code, data = cli.json(*args, prefix=target)
        assert data["imported"] == 0 and data["skipped_existing"] == len(expected)

        async def check(svc: RedisSessionService) -> None:
            await assert_equal(svc, expected)

        cli.run(check, prefix=target)
    finally:
        _drop(redis_url, prefix, prefix + "-copy")


@pytest.mark.parametrize("kind", ["sqlite", "database"])
def test_import_from_adk_sql_databases(cli: Cli, tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.db"
    make: Callable[[], BaseSessionService]
    if kind == "sqlite":
        make = lambda: SqliteSessionService(str(path))  # noqa: E731
    else:
        make = lambda: DatabaseSessionService(f"sqlite+aiosqlite:///{path}")  # noqa: E731

    async def setup() -> dict[Key, dict[str, Any]]:
        svc = make()
        try:
            return await snapshot(svc, await populate(svc))
        finally:
            close = getattr(svc, "close", None)
            if close is not None:
                await close()

    expected = asyncio.run(setup())
    code, out, _ = cli("import", "--from", f"sqlite:///{path}")
    assert code == 0 and f"imported {len(expected)} sessions, skipped 0 existing" in out
    code, data = cli.json("import", "--from", f"sqlite:///{path}", "--app", "shop")
    assert data["imported"] == 0 and data["skipped_existing"] == sum(1 for k in expected if k[0] == "shop")

    async def check(svc: RedisSessionService) -> None:
        await assert_equal(svc, expected)

    cli.run(check)


def test_import_from_rejects_unknown_sources(cli: Cli, tmp_path: Path) -> None:
    code, _, err = cli("import", "--from", "ftp://x")
    assert code == 2 and "unsupported source" in err
    code, _, err = cli("import", "--from", "sqlite:///x.db", "-i", str(tmp_path / "a"))
    assert code == 2 and "mutually exclusive" in err


def test_migrate_with_overlapping_prefixes_skips_our_own_keys(cli: Cli) -> None:
    """ADK's keys under ``<prefix>:session:`` share the SCAN with ours: ours are neither migrated nor junk."""
    legacy = f"{cli.prefix}:session:"
    expected = _legacy_setup(cli, legacy)
    code, data = cli.json("migrate", "--legacy-prefix", legacy, "--batch", "4")
    assert code == 0 and data["done"] is True and data["migrated_total"] == len(expected)
    code, data = cli.json("migrate", "--legacy-prefix", legacy, "--restart")  # rescans our new keys too
    assert data["this_run"]["imported"] == 0 and data["this_run"]["skipped_existing"] == len(expected)
    assert data["invalid_total"] == 2  # only the junk string and the hash
