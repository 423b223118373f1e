"""Paginated listings (list_sessions_page), on a real server and fakeredis."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import fakeredis
import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.session import Session

from adk_redis import InvalidCursorError, RedisSessionService, SessionPage
from adk_redis.admin.migrate import backfill_created_index
from adk_redis.resilience._fallback import BreakerState, FallbackSessionService
from adk_redis.sessions._service import _listed_session
from tests.cli_fixtures import Cli

APP = "pages"


def ev(**delta: Any) -> Event:
    return Event(author="agent", actions=EventActions(state_delta=delta))


async def walk(svc: Any, limit: int, user: str | None = "u", order: str = "created", **kw: Any) -> list[str]:
    """Every page of a listing: the session ids in page order."""
    ids: list[str] = []
    cursor = None
    for _ in range(1000):  # a cursor that does not advance fails instead of looping
        page = await svc.list_sessions_page(
            app_name=APP, user_id=user, limit=limit, cursor=cursor, order=order
        )
        assert len(page.sessions) <= limit
        ids += [s.id for s in page.sessions]
        cursor = page.next_cursor
        if cursor is None:
            return ids
    raise AssertionError("the traversal does not end")


async def restore(svc: RedisSessionService, sid: str, created: float, user: str = "u") -> None:
    session = Session(id=sid, app_name=APP, user_id=user, state={"n": sid}, last_update_time=created + 1)
    assert await svc.restore_session(session, created=created)


@pytest.mark.parametrize("scope", ["user", "app"])
async def test_created_traversal_survives_concurrent_changes(
    redis_session_service: RedisSessionService, scope: str
) -> None:
    """Every session that existed throughout is seen exactly once while others are created,
    appended to and deleted between page reads; ties (equal creation times) included."""
    svc = redis_session_service
    rng = random.Random(7)
    users = ["u", "v"]
    initial: list[tuple[str, str]] = []
    for i in range(30):
        user = users[i % 2]
        s = await svc.create_session(app_name=APP, user_id=user, session_id=f"c{i:02d}")
        initial.append((user, s.id))
    for i in range(12):  # ties: identical creation times, ordered by member
        await restore(svc, f"t{i:02d}", 1000.0, user=users[i % 2])
        initial.append((users[i % 2], f"t{i:02d}"))
    listed_user = None if scope == "app" else "u"
    expected = [k for k in initial if listed_user in (None, k[0])]
    deleted: set[tuple[str, str]] = set()
    created: set[tuple[str, str]] = set()
    seen: list[tuple[str, str]] = []
    cursor = None
    step = 0
    while True:
        page = await svc.list_sessions_page(app_name=APP, user_id=listed_user, limit=4, cursor=cursor)
        seen += [(s.user_id, s.id) for s in page.sessions]
        if page.sessions:  # the page's last session is deleted sometimes: the cursor's entry is gone
            last = page.sessions[-1]
            if step % 3 == 1:
                await svc.delete_session(app_name=APP, user_id=last.user_id, session_id=last.id)
                deleted.add((last.user_id, last.id))
        for _ in range(2):
            user = rng.choice(users)
            s = await svc.create_session(app_name=APP, user_id=user)
            created.add((user, s.id))
        alive = [k for k in expected if k not in deleted]
        for user, sid in rng.sample(alive, min(3, len(alive))):  # appends move the update indexes
            got = await svc.get_session(app_name=APP, user_id=user, session_id=sid)
            assert got is not None
            await svc.append_event(got, ev(step=step))
        victim = rng.choice([k for k in expected if k not in deleted])
        if victim not in seen and step % 2 == 0:
            await svc.delete_session(app_name=APP, user_id=victim[0], session_id=victim[1])
            deleted.add(victim)
        cursor = page.next_cursor
        step += 1
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a session was returned twice"
    missing = [k for k in expected if k not in deleted and k not in seen]
    assert not missing
    assert set(seen) <= set(initial) | created
    assert any(k[1].startswith("t") for k in seen) and deleted


async def test_ties_when_the_cursor_entry_is_deleted(redis_session_service: RedisSessionService) -> None:
    svc = redis_session_service
    for i in range(10):
        await restore(svc, f"s{i}", 500.0)
    page = await svc.list_sessions_page(app_name=APP, user_id="u", limit=3)
    assert [s.id for s in page.sessions] == ["s0", "s1", "s2"]
    await svc.delete_session(app_name=APP, user_id="u", session_id="s2")
    page = await svc.list_sessions_page(app_name=APP, user_id="u", limit=3, cursor=page.next_cursor)
    assert [s.id for s in page.sessions] == ["s3", "s4", "s5"]
    assert await walk(svc, 4) == [f"s{i}" for i in range(10) if i != 2]


async def test_limits_and_empty_listing(redis_session_service: RedisSessionService) -> None:
    svc = redis_session_service
    empty = await svc.list_sessions_page(app_name=APP, user_id="u")
    assert empty == SessionPage([], None)
    assert (await svc.list_sessions_page(app_name=APP)).sessions == []
    ids = [(await svc.create_session(app_name=APP, user_id="u")).id for _ in range(5)]
    assert await walk(svc, 1) == ids
    page = await svc.list_sessions_page(app_name=APP, user_id="u", limit=1000)
    assert [s.id for s in page.sessions] == ids and page.next_cursor is None
    page = await svc.list_sessions_page(app_name=APP, user_id="u", limit=5)
    assert len(page.sessions) == 5 and page.next_cursor is None  # an exact fit has no next page
    for bad in (0, 1001, -1, True, 2.5):
        with pytest.raises(ValueError, match="limit"):
            await svc.list_sessions_page(app_name=APP, user_id="u", limit=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="order"):
        await svc.list_sessions_page(app_name=APP, user_id="u", order="name")  # type: ignore[arg-type]


async def test_updated_order_most_recent_first(redis_session_service: RedisSessionService) -> None:
    svc = redis_session_service
    sessions = [await svc.create_session(app_name=APP, user_id="u") for _ in range(5)]
    await svc.append_event(sessions[1], ev(x=1))
    want = [sessions[1].id] + [s.id for s in reversed(sessions) if s is not sessions[1]]
    assert await walk(svc, 2, order="updated") == want
    assert await walk(svc, 2, user=None, order="updated") == want
    assert await walk(svc, 2) == [s.id for s in sessions]  # creation order is unchanged


async def test_page_sessions_are_list_sessions_sessions(redis_session_service: RedisSessionService) -> None:
    svc = redis_session_service
    for user in ("u", "v"):
        await svc.create_session(app_name=APP, user_id=user, state={"k": user, "user:tier": 1, "app:m": "x"})
    s = (await svc.list_sessions(app_name=APP, user_id="u")).sessions[0]
    await svc.append_event(s, ev(k="changed", **{"user:tier": 2}))
    listed = {x.id: x for x in (await svc.list_sessions(app_name=APP)).sessions}
    paged = (await svc.list_sessions_page(app_name=APP, limit=10)).sessions
    assert {x.id: x for x in paged} == listed and len(paged) == 2
    for x in paged:
        assert x._storage_update_marker == listed[x.id]._storage_update_marker and not x.events
        assert x.model_dump_json() == listed[x.id].model_dump_json()
    mine = next(x for x in paged if x.user_id == "u")
    assert mine.state == {"k": "changed", "user:tier": 2, "app:m": "x"}
    await svc.append_event(mine, ev(k="again"))  # a page's session can be appended to
    got = await svc.get_session(app_name=APP, user_id="u", session_id=mine.id)
    assert got is not None and got.state["k"] == "again" and len(got.events) == 2


def test_listed_session_equals_the_validated_model() -> None:
    built = _listed_session("s", "a", "u", {"k": [1]}, 12.5, "3")
    valid = Session(id="s", app_name="a", user_id="u", state={"k": [1]}, events=[], last_update_time=12.5)
    valid._storage_update_marker = "3"
    assert built == valid and built.model_fields_set == valid.model_fields_set
    assert built.model_dump_json() == valid.model_dump_json() and built.__pydantic_private__ == {
        "_storage_update_marker": "3"
    }
    assert built.model_copy(deep=True) == valid


async def test_cursors_of_other_listings_and_garbage_are_rejected(
    redis_session_service: RedisSessionService,
) -> None:
    svc = redis_session_service
    for user in ("u", "v"):
        for _ in range(3):
            await svc.create_session(app_name=APP, user_id=user)
    await svc.create_session(app_name="other", user_id="u")
    cursor = (await svc.list_sessions_page(app_name=APP, user_id="u", limit=1)).next_cursor
    assert cursor is not None
    for kw in (
        {"app_name": "other", "user_id": "u"},
        {"app_name": APP, "user_id": "v"},
        {"app_name": APP, "user_id": None},
        {"app_name": APP, "user_id": "u", "order": "updated"},
    ):
        with pytest.raises(InvalidCursorError, match="another listing"):
            await svc.list_sessions_page(cursor=cursor, **kw)
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    body = json.loads(raw[:-6])
    body[4] = "0"  # another position, checksum kept: altered
    forged = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode() + raw[-6:]).decode()
    for bad in (forged, "garbage!", "", "AAAA", cursor[:-3], base64.urlsafe_b64encode(b"[1]").decode()):
        with pytest.raises(InvalidCursorError):
            await svc.list_sessions_page(app_name=APP, user_id="u", cursor=bad)
    assert issubclass(InvalidCursorError, ValueError)
    # the cursor still works for its own listing
    page = await svc.list_sessions_page(app_name=APP, user_id="u", limit=5, cursor=cursor)
    assert len(page.sessions) == 2


async def test_expired_entry_is_skipped_and_removed(redis_session_service: RedisSessionService) -> None:
    svc = redis_session_service
    ids = [(await svc.create_session(app_name=APP, user_id="u")).id for _ in range(4)]
    await svc.client.delete(svc.keys.session(APP, "u", ids[1]).meta)  # what expiry leaves behind
    assert await walk(svc, 2) == [ids[0], ids[2], ids[3]]
    member = svc.keys.session_member(ids[1])
    app_member = svc.keys.app_index_member("u", ids[1])
    assert await svc.client.zscore(svc.keys.user_created_index(APP, "u"), member) is None
    assert await svc.client.zscore(svc.keys.app_created_index(APP), app_member) is None
    assert await svc.client.zscore(svc.keys.user_index(APP, "u"), member) is None
    assert await svc.client.zcard(svc.keys.user_created_index(APP, "u")) == 3


async def test_ttl_applies_to_the_creation_indexes(prefix: str) -> None:
    svc = RedisSessionService(client=fakeredis.FakeAsyncRedis(), key_prefix=prefix, session_ttl_hours=1)
    s = await svc.create_session(app_name=APP, user_id="u")
    await restore(svc, "r", 10.0)
    for key in (svc.keys.user_created_index(APP, "u"), svc.keys.app_created_index(APP)):
        assert 0 < await svc.client.pttl(key) <= 3_600_000
    assert await walk(svc, 1) == ["r", s.id]


async def test_delete_removes_creation_entries(redis_session_service: RedisSessionService) -> None:
    svc = redis_session_service
    s = await svc.create_session(app_name=APP, user_id="u")
    await svc.delete_session(app_name=APP, user_id="u", session_id=s.id)
    assert await svc.client.zcard(svc.keys.user_created_index(APP, "u")) == 0
    assert await svc.client.zcard(svc.keys.app_created_index(APP)) == 0


async def test_migrate_backfills_the_creation_index(redis_session_service: RedisSessionService) -> None:
    svc = redis_session_service
    ids = [(await svc.create_session(app_name=APP, user_id=u)).id for u in ("u", "v", "u")]
    await restore(svc, "old", 1.0)
    # sessions written before the index existed: no creation-index entries; then a new session
    await svc.client.delete(svc.keys.user_created_index(APP, "u"), svc.keys.user_created_index(APP, "v"))
    await svc.client.delete(svc.keys.app_created_index(APP))
    new = (await svc.create_session(app_name=APP, user_id="u")).id
    # creation indexes written by a version that indexed new sessions into an absent index
    for index, member in (
        (svc.keys.user_created_index(APP, "u"), svc.keys.session_member(new)),
        (svc.keys.app_created_index(APP), svc.keys.app_index_member("u", new)),
    ):
        await svc.client.zadd(index, {member: 1e10})
    assert await walk(svc, 2, user=None) == [new]
    stats = await backfill_created_index(svc, batch=2)
    assert (stats.sessions, stats.added, stats.gone) == (5, 4, 0)
    created = await svc.client.zscore(svc.keys.user_created_index(APP, "u"), svc.keys.session_member(new))
    assert created == 1e10  # NX: an entry that exists is kept
    assert await walk(svc, 2, user=None) == ["old", *ids, new]
    assert await walk(svc, 1) == ["old", ids[0], ids[2], new]
    again = await backfill_created_index(svc)
    assert again.added == 0 and again.sessions == 5  # idempotent


async def test_missing_creation_index_is_rebuilt(redis_session_service: RedisSessionService) -> None:
    """A creation index that expired (a sliding TTL refreshes it at creates only) or was never
    written is rebuilt by the first page that finds it missing while the listing index exists."""
    svc = redis_session_service
    ids = [(await svc.create_session(app_name=APP, user_id=u)).id for u in ("u", "v", "u")]
    await svc.client.delete(svc.keys.user_created_index(APP, "u"), svc.keys.app_created_index(APP))
    await svc.client.delete(svc.keys.session_meta(APP, "u", ids[2]))  # expired meanwhile: not indexed
    assert await walk(svc, 1) == [ids[0]]
    assert await svc.client.zcard(svc.keys.user_created_index(APP, "u")) == 1
    assert await walk(svc, 2, user=None) == ids[:2]
    assert await svc.client.zcard(svc.keys.app_created_index(APP)) == 2


@pytest.mark.parametrize("via", ["create", "restore"])
async def test_sessions_created_after_the_index_expired_are_not_hidden(
    redis_session_service: RedisSessionService, via: str
) -> None:
    """The creation index expired (TTL: refreshed at creates only) while older sessions live on; a new
    session must not start a fresh index that hides them: the next page rebuilds it whole."""
    svc = redis_session_service
    ids = [(await svc.create_session(app_name=APP, user_id="u")).id for _ in range(3)]
    await svc.client.delete(svc.keys.user_created_index(APP, "u"), svc.keys.app_created_index(APP))
    if via == "create":
        ids.append((await svc.create_session(app_name=APP, user_id="u")).id)
    else:
        await restore(svc, "r", 2e9)
        ids.append("r")
    assert await walk(svc, 2) == ids
    assert await walk(svc, 3, user=None) == ids
    # a user or app without sessions starts its index with its first session
    first = await svc.create_session(app_name="fresh", user_id="w")
    assert await svc.client.zcard(svc.keys.user_created_index("fresh", "w")) == 1
    assert (
        await svc.client.zscore(svc.keys.app_created_index("fresh"), svc.keys.app_index_member("w", first.id))
        is not None
    )


async def test_fallback_pages_over_memory_during_outage(prefix: str) -> None:
    server = fakeredis.FakeServer()
    svc = FallbackSessionService(
        RedisSessionService(client=fakeredis.FakeAsyncRedis(server=server), key_prefix=prefix),
        health_check_interval=0.01,
        failure_threshold=1,
    )
    in_redis = [(await svc.create_session(app_name=APP, user_id="u")).id for _ in range(3)]
    page = await svc.list_sessions_page(app_name=APP, user_id="u", limit=2)
    assert [s.id for s in page.sessions] == in_redis[:2]
    server.connected = False
    mem = [(await svc.create_session(app_name=APP, user_id="u", state={"i": i})).id for i in range(5)]
    assert svc.state is BreakerState.OPEN
    assert await walk(svc, 2) == mem  # memory's sessions, in creation order, over pages
    assert await walk(svc, 2, user=None, order="updated") == mem[::-1]
    page = await svc.list_sessions_page(app_name=APP, user_id="u", limit=2)
    assert page.sessions[0].state == {"i": 0} and page.next_cursor is not None
    with pytest.raises(InvalidCursorError):
        await svc.list_sessions_page(app_name=APP, user_id="v", cursor=page.next_cursor)
    server.connected = True
    assert await svc.wait_closed(5)
    assert await walk(svc, 3) == in_redis + mem  # written back: Redis pages see them all
    await svc.close()


def test_cli_sessions_list_pages(cli: Cli) -> None:
    async def seed(svc: RedisSessionService) -> list[str]:
        made = [await svc.create_session(app_name=APP, user_id="u", session_id=f"s{i}") for i in range(5)]
        return [s.id for s in made]

    ids = cli.run(seed)
    code, out, err = cli("sessions", "list", "--app", APP, "--user", "u", "--limit", "2")
    assert code == 0 and out.startswith("2 sessions in app") and "--cursor" in out
    cursor = out.split("--cursor ", 1)[1].split()[0]
    code, rows = cli.json("sessions", "list", "--app", APP, "--user", "u", "--limit", "2", "--cursor", cursor)
    assert code == 0 and [r["id"] for r in rows] == ids[2:4]
    code, rows = cli.json("sessions", "list", "--app", APP, "--limit", "2", "--all")
    assert code == 0 and [r["id"] for r in rows] == ids
    code, rows = cli.json("sessions", "list", "--app", APP, "--all", "--order", "updated")
    assert code == 0 and [r["id"] for r in rows] == ids[::-1]
    code, out, err = cli("sessions", "list", "--app", APP, "--user", "v", "--cursor", cursor)
    assert code == 2 and "another listing" in err
    assert cli("sessions", "list", "--app", APP, "--limit", "0")[0] == 2


async def test_state_hashes_of_the_wrong_type_fail_only_themselves(
    redis_session_service: RedisSessionService,
) -> None:
    svc = redis_session_service
    s = await svc.create_session(app_name=APP, user_id="u", state={"k": 1, "app:a": 1, "user:b": 2})
    await svc.create_session(app_name=APP, user_id="v", state={"user:c": 3})
    await svc.client.delete(svc.keys.app_state(APP), svc.keys.user_state(APP, "u"))
    await svc.client.set(svc.keys.app_state(APP), "junk")
    await svc.client.set(svc.keys.user_state(APP, "u"), "junk")
    page = await svc.list_sessions_page(app_name=APP, user_id="u")
    assert [(x.id, x.state) for x in page.sessions] == [(s.id, {"k": 1})]
    page = await svc.list_sessions_page(app_name=APP)  # app-wide: two users, the pipeline
    assert [x.state for x in page.sessions] == [{"k": 1}, {"user:c": 3}]
