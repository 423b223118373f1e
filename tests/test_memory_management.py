"""Issue 19: memory you can manage (ids that round-trip, deletion, forget_user, TTL overrides, hits,
scores).  Each test runs on fakeredis and a real server (``redis_memory``), the ADK contract ones also on
ADK's InMemoryMemoryService as the reference (``memory_service``)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions.base_session_service import ListSessionsResponse
from google.adk.sessions.session import Session
from google.genai import types

from adk_redis import RedisSessionService, RedisSettings
from adk_redis.errors import ConfigurationError, InvalidCursorError
from adk_redis.memory import ForgetResult, RedisMemoryService
from adk_redis.memory._tokenizer import query_terms
from adk_redis.store import SessionStoreConfig, create_session_store
from tests.memory_helpers import make_event, make_session
from tests.servers import redis_cluster

pytest_plugins = ["tests.memory_fixtures"]

APP = "app"


def entry(text: str, id_: str | None = None, **meta: Any) -> MemoryEntry:
    return MemoryEntry(
        id=id_, author="user", content=types.Content(parts=[types.Part(text=text)]), custom_metadata=meta
    )


async def search(svc: Any, query: str, user: str = "u") -> list[MemoryEntry]:
    return list((await svc.search_memory(app_name=APP, user_id=user, query=query)).memories)


# -- 1. ids round-trip -------------------------------------------------------------------


async def test_caller_id_round_trips(redis_memory: RedisMemoryService) -> None:
    await redis_memory.add_memory(app_name=APP, user_id="u", memories=[entry("my car is a red volvo", "car")])
    found = await search(redis_memory, "volvo")
    assert [m.id for m in found] == ["car"]
    await redis_memory.delete_memory(app_name=APP, user_id="u", memory_id="car")
    assert await search(redis_memory, "volvo") == []


async def test_generated_ids_are_accepted_as_returned(redis_memory: RedisMemoryService) -> None:
    await redis_memory.add_session_to_memory(make_session(APP, "u", "s:1 x", ["the tulips bloom in april"]))
    await redis_memory.cross_session(APP).store_user_context("u", "garden plan", {"flower": "tulips"})
    ids = [m.id for m in await search(redis_memory, "tulips")]
    assert len(ids) == 2 and all(i and i[:2] in ("h:", "c:") for i in ids)
    mids = [str(i) for i in ids]
    assert await redis_memory.delete_memories(app_name=APP, user_id="u", memory_ids=mids) == 2
    assert await search(redis_memory, "tulips") == []
    # idempotent: the second time nothing matches, and says so
    assert await redis_memory.delete_memories(app_name=APP, user_id="u", memory_ids=mids) == 0


async def test_unknown_id_is_reported(
    redis_memory: RedisMemoryService, caplog: pytest.LogCaptureFixture
) -> None:
    await redis_memory.add_memory(app_name=APP, user_id="u", memories=[entry("keep me", "kept")])
    with caplog.at_level(logging.WARNING, logger="adk_redis.memory"):
        await redis_memory.delete_memory(app_name=APP, user_id="u", memory_id="no-such-id")
    assert any("no-such-id" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert await redis_memory.delete_memories(app_name=APP, user_id="u", memory_ids=["nope", "kept"]) == 1


async def test_caller_id_cannot_collide_with_generated(redis_memory: RedisMemoryService) -> None:
    await redis_memory.add_session_to_memory(make_session(APP, "u", "s1", ["penguins waddle"]))
    [turn] = await search(redis_memory, "penguins")
    with pytest.raises(ValueError, match="reserved"):
        await redis_memory.add_memory(app_name=APP, user_id="u", memories=[entry("fake", str(turn.id))])
    # an id that only looks namespaced is the caller's own
    await redis_memory.add_memory(app_name=APP, user_id="u", memories=[entry("walrus tusks", "m:walrus")])
    assert [m.id for m in await search(redis_memory, "walrus")] == ["m:walrus"]
    assert [m.id for m in await search(redis_memory, "penguins")] == [turn.id]


async def test_legacy_prefixed_id_still_deletes(redis_memory: RedisMemoryService) -> None:
    # ids returned before issue 19 were "m:<id>": deleting with one still works
    await redis_memory.add_memory(app_name=APP, user_id="u", memories=[entry("old bicycle", "bike")])
    assert await redis_memory.delete_memories(app_name=APP, user_id="u", memory_ids=["m:bike"]) == 1
    assert await search(redis_memory, "bicycle") == []


# -- 2. deletion, listing ------------------------------------------------------------------


@pytest.fixture
def sessions(redis_client: Any, prefix: str) -> RedisSessionService:
    """A session service on the same client and prefix as ``redis_memory``."""
    return RedisSessionService(client=redis_client, key_prefix=prefix)


async def _session_with_turns(
    sessions: RedisSessionService, memory: RedisMemoryService, sid: str, texts: list[str], user: str = "u"
) -> Session:
    s = await sessions.create_session(app_name=APP, user_id=user, session_id=sid)
    for n, t in enumerate(texts):
        await sessions.append_event(s, make_event(t, author="user" if n % 2 == 0 else "model"))
    stored = await sessions.get_session(app_name=APP, user_id=user, session_id=sid)
    assert stored is not None
    await memory.add_session_to_memory(stored)
    return stored


async def test_deleting_a_session_deletes_its_turn_memories(
    redis_memory: RedisMemoryService, sessions: RedisSessionService
) -> None:
    s1 = await _session_with_turns(sessions, redis_memory, "s1", ["my cat is called Mochi"])
    await _session_with_turns(sessions, redis_memory, "s2", ["Mochi is a rice cake too"])
    await redis_memory.add_memory(app_name=APP, user_id="u", memories=[entry("Mochi likes tuna", "cat")])
    assert len(await search(redis_memory, "Mochi")) == 3
    await sessions.delete_session(app_name=APP, user_id="u", session_id="s1")
    assert sorted(texts_of_entries(await search(redis_memory, "Mochi"))) == [
        "Mochi is a rice cake too",
        "Mochi likes tuna",
    ]
    # re-ingesting a stale copy of the deleted session does not bring its turns back
    await redis_memory.add_session_to_memory(s1)
    assert len(await search(redis_memory, "Mochi")) == 2
    # idempotent
    await sessions.delete_session(app_name=APP, user_id="u", session_id="s1")
    assert await redis_memory.delete_session_memories(app_name=APP, user_id="u", session_id="s1") == 0


def texts_of_entries(found: list[MemoryEntry]) -> list[str]:
    return [" ".join(p.text or "" for p in (m.content.parts or [])) for m in found]


async def test_setting_keeps_memories_of_deleted_sessions(
    redis_client: Any, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DELETE_MEMORIES_WITH_SESSION", "false")
    sessions = RedisSessionService(client=redis_client, key_prefix=prefix)
    memory = RedisMemoryService(client=redis_client, key_prefix=prefix)
    assert sessions.settings.delete_memories_with_session is False
    await _session_with_turns(sessions, memory, "s1", ["the lighthouse keeper waved"])
    await sessions.delete_session(app_name=APP, user_id="u", session_id="s1")
    assert texts_of_entries(await search(memory, "lighthouse")) == ["the lighthouse keeper waved"]


async def test_session_expiry_keeps_memories(redis_client: Any, prefix: str) -> None:
    sessions = RedisSessionService(client=redis_client, key_prefix=prefix, session_ttl_hours=0.5 / 3600)
    memory = RedisMemoryService(client=redis_client, key_prefix=prefix)
    await _session_with_turns(sessions, memory, "s1", ["the comet returns in 2061"])
    await asyncio.sleep(1.0)
    assert await sessions.get_session(app_name=APP, user_id="u", session_id="s1") is None
    assert texts_of_entries(await search(memory, "comet")) == ["the comet returns in 2061"]


async def test_delete_session_memories_and_list(
    redis_memory: RedisMemoryService, sessions: RedisSessionService
) -> None:
    await _session_with_turns(sessions, redis_memory, "a b", ["alpha one", "alpha two", "alpha three"])
    await _session_with_turns(sessions, redis_memory, "a", ["beta one"])  # a prefix of "a b"'s id
    notes = [entry(f"note {n}", f"n{n}") for n in range(5)]
    await redis_memory.add_memory(app_name=APP, user_id="u", memories=notes)
    await redis_memory.cross_session(APP).store_user_context("u", "prefs", {"tea": "green"})
    seen: list[str] = []
    cursor = None
    while True:
        page = await redis_memory.list_memories(app_name=APP, user_id="u", cursor=cursor, limit=3)
        assert len(page.memories) <= 3
        seen += [str(m.id) for m in page.memories]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 10
    assert {"n0", "n4", "c:prefs"} <= set(seen)
    only = await redis_memory.list_memories(app_name=APP, user_id="u", kind="memory")
    assert [m.id for m in only.memories] == [f"n{n}" for n in range(5)] and only.next_cursor is None
    with pytest.raises(InvalidCursorError):
        await redis_memory.list_memories(app_name=APP, user_id="u", kind="history", cursor="garbage")
    assert await redis_memory.delete_session_memories(app_name=APP, user_id="u", session_id="a b") == 3
    history = await redis_memory.list_memories(app_name=APP, user_id="u", kind="history")
    assert texts_of_entries(history.memories) == ["beta one"]
    got = await redis_memory.get_memory(app_name=APP, user_id="u", memory_id="n2")
    assert got is not None and texts_of_entries([got]) == ["note 2"]
    assert await redis_memory.get_memory(app_name=APP, user_id="u", memory_id="nope") is None


@pytest.mark.parametrize("cli", ["fakeredis", "redis"], indirect=True)
def test_cli_memory_and_sessions_delete(cli: Any) -> None:
    async def setup(svc: RedisSessionService) -> None:
        mem = RedisMemoryService(client=svc.client, settings=svc.settings)
        await _session_with_turns(svc, mem, "s1", ["the orchard has pears"])
        await _session_with_turns(svc, mem, "s2", ["the orchard has plums"])
        await mem.add_memory(app_name=APP, user_id="u", memories=[entry("orchard gate code 1234", "gate")])

    cli.run(setup)
    code, rows = cli.json("memory", "list", "--app", APP, "--user", "u")
    assert code == 0 and len(rows) == 3 and "gate" in [r["id"] for r in rows]
    code, out, _ = cli("memory", "show", "--app", APP, "--user", "u", "gate")
    assert code == 0 and "orchard gate code 1234" in out
    code, out, _ = cli("memory", "delete", "--app", APP, "--user", "u", "gate", "missing-id")
    assert code == 1 and "deleted gate" in out and "not found: missing-id" in out
    code, out, _ = cli("memory", "show", "--app", APP, "--user", "u", "gate")
    assert code == 1 and "not found" in out
    code, out, _ = cli("sessions", "delete", "--app", APP, "--user", "u", "s1")
    assert code == 0
    code, rows = cli.json("memory", "list", "--app", APP, "--user", "u")
    assert [r["text"] for r in rows] == ["the orchard has plums"]
    code, out, _ = cli("memory", "delete", "--app", APP, "--user", "u", "--session", "s2")
    assert code == 0 and "deleted 1 memory of session 's2'" in out
    code, rows = cli.json("memory", "list", "--app", APP, "--user", "u")
    assert rows == []


# -- 3. forget_user --------------------------------------------------------------------------


async def _populate(sessions: RedisSessionService, memory: RedisMemoryService, user: str) -> None:
    s = await sessions.create_session(app_name=APP, user_id=user, session_id="s1", state={"user:lang": "fr"})
    for t in ["bonjour the river is wide", "indeed very wide"]:
        await sessions.append_event(s, make_event(t))
    await sessions.create_session(app_name=APP, user_id=user, session_id="s2")
    stored = await sessions.get_session(app_name=APP, user_id=user, session_id="s1")
    assert stored is not None
    await memory.add_session_to_memory(stored)
    await memory.add_memory(app_name=APP, user_id=user, memories=[entry("river fishing licence", "lic")])
    cross = memory.cross_session(APP)
    await cross.store_user_context(user, "home", {"city": "river town"})
    await cross.record_session(user, "s1", summary={"topic": "river"})
    await memory.client.set(memory.keys.session_owner(APP, "s1"), user)


async def _keys_of(client: Any, prefix: str) -> set[str]:
    return {k.decode() if isinstance(k, bytes) else k async for k in client.scan_iter(match=f"{prefix}:*")}


async def test_forget_user_erases_everything_and_counts(redis_client: Any, prefix: str) -> None:
    sessions = RedisSessionService(client=redis_client, key_prefix=prefix)
    memory = RedisMemoryService(client=redis_client, key_prefix=prefix)
    await _populate(sessions, memory, "other")
    other_keys = await _keys_of(redis_client, prefix)
    await redis_client.delete(memory.keys.session_owner(APP, "s1"))  # both users have a session "s1"
    await _populate(sessions, memory, "u")
    result = await memory.forget_user(app_name=APP, user_id="u")
    assert result.as_dict() == {
        "sessions": 2,
        "events": 2,
        "user_state": 1,
        "memories": 3,
        "user_context": 1,
        "session_history": 1,
        "owner_records": 1,
        "counters": 0,
        "facts": 0,
    }
    left = await _keys_of(redis_client, prefix)
    assert left <= other_keys  # nothing of "u" is left; the other user's data is untouched
    assert not [k for k in left if "{app:u}" in k]
    assert await sessions.list_sessions(app_name=APP, user_id="u") == ListSessionsResponse()
    app_sessions = await sessions.list_sessions(app_name=APP)
    assert {(s.user_id, s.id) for s in app_sessions.sessions} == {("other", "s1"), ("other", "s2")}
    assert await sessions.get_user_state(app_name=APP, user_id="u") == {}
    assert await search(memory, "river") == [] and len(await search(memory, "river", user="other")) >= 2
    again = await memory.forget_user(app_name=APP, user_id="u")
    assert again.as_dict() == ForgetResult().as_dict()


@pytest.mark.parametrize("cli", ["fakeredis", "redis"], indirect=True)
def test_cli_users_forget(cli: Any) -> None:
    async def setup(svc: RedisSessionService) -> None:
        await _populate(svc, RedisMemoryService(client=svc.client, settings=svc.settings), "u")

    cli.run(setup)
    code, out, _ = cli("users", "forget", "--app", APP, "--user", "u")
    assert code == 0 and "forgot user 'u'" in out and re.search(r"sessions\s+2", out), out
    code, data = cli.json("users", "forget", "--app", APP, "--user", "u")
    assert code == 0 and data["sessions"] == 0 and data["memories"] == 0


def test_forget_user_on_a_cluster() -> None:
    async def go(url: str) -> None:
        prefix = f"f{uuid.uuid4().hex[:8]}"
        sessions = RedisSessionService(url, key_prefix=prefix)
        memory = RedisMemoryService(client=sessions.client, key_prefix=prefix)
        try:
            for user in ("u", "other"):
                await _populate(sessions, memory, user)
            result = await memory.forget_user(app_name=APP, user_id="u")
            assert result.sessions == 2 and result.memories == 3 and result.user_context == 1
            assert result.owner_records == 0  # the other user's record of "s1" was written last
            assert await search(memory, "river") == []
            listed = await sessions.list_sessions(app_name=APP)
            assert {s.user_id for s in listed.sessions} == {"other"}
            assert len(await search(memory, "river", user="other")) >= 2
        finally:
            await sessions.close()

    with redis_cluster(3) as nodes:
        asyncio.run(go(f"redis+cluster://127.0.0.1:{nodes[0].port}"))


async def test_forget_user_with_a_concurrent_writer(redis_client: Any, prefix: str) -> None:
    """Every write of the writer lands wholly before the erasure or wholly after it."""
    sessions = RedisSessionService(client=redis_client, key_prefix=prefix)
    memory = RedisMemoryService(client=redis_client, key_prefix=prefix)
    done_before: list[str] = []
    stop = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            sid = f"w{n}"
            n += 1
            try:
                s = await sessions.create_session(app_name=APP, user_id="u", session_id=sid)
                await sessions.append_event(s, make_event(f"writer turn {sid} walrus"))
                await memory.add_memory(app_name=APP, user_id="u", memories=[entry(f"walrus {sid}", sid)])
            except Exception:  # the erasure removed the session between two calls
                pass
            if not erasing.is_set():
                done_before.append(sid)
            await asyncio.sleep(0)

    erasing = asyncio.Event()
    task = asyncio.ensure_future(writer())
    while len(done_before) < 5:
        await asyncio.sleep(0.005)
    erasing.set()
    await memory.forget_user(app_name=APP, user_id="u")
    await asyncio.sleep(0.05)
    stop.set()
    await task
    # what was written before the erasure began is gone ...
    ids = {s.id for s in (await sessions.list_sessions(app_name=APP, user_id="u")).sessions}
    assert not ids & set(done_before)
    assert ids  # the writer went on after the erasure, and what it wrote then remains
    # ... and what remains is whole: every listed session has its record and its events, the memory
    # index's counts match its documents
    for sid in ids:
        s = await sessions.get_session(app_name=APP, user_id="u", session_id=sid)
        assert s is not None
    ik = memory.keys.user_memory_index(APP, "u")
    n_docs = int(await redis_client.hlen(ik.docs))
    n_terms = int(await redis_client.hlen(ik.terms))
    assert int(await redis_client.hget(ik.stats, "n") or 0) == n_docs == n_terms
    listed = await memory.list_memories(app_name=APP, user_id="u", limit=1000)
    assert len(listed.memories) == n_docs
    for m in listed.memories:
        assert m.id not in done_before


def test_design_api_delete_session_deletes_its_memories(redis_url: str, prefix: str) -> None:
    settings = RedisSettings(redis_url=redis_url, redis_key_prefix=prefix)
    config = SessionStoreConfig(app_name=APP, cleanup_interval_minutes=0)
    store = create_session_store(config, settings=settings)

    async def ingest_and_search(ingest: bool) -> list[MemoryEntry]:
        async with RedisMemoryService(redis_url, key_prefix=prefix) as memory:
            if ingest:
                async with RedisSessionService(redis_url, key_prefix=prefix) as sessions:
                    stored = await sessions.get_session(app_name=APP, user_id="ann", session_id="chat1")
                    assert stored is not None
                    await memory.add_session_to_memory(stored)
            return await search(memory, "saxophone", user="ann")

    try:
        store.ensure_session("chat1", user_id="ann")
        store.add_message("chat1", {"role": "user", "content": "I play the saxophone on Sundays"})
        assert len(asyncio.run(ingest_and_search(True))) == 1
        assert store.delete_session("chat1", user_id="ann") is True
        assert asyncio.run(ingest_and_search(False)) == []
    finally:
        store.close()


# -- 4. TTL overrides ---------------------------------------------------------------------------


async def _expires_in_s(memory: RedisMemoryService, doc_id: str) -> float:
    ik = memory.keys.user_memory_index(APP, "u")
    score = await memory.client.zscore(ik.expiry, doc_id)
    assert score is not None
    return (float(score) - time.time() * 1000) / 1000


@pytest.mark.parametrize(
    ("meta", "seconds"),
    [
        ({"ttl": "120s"}, 120),
        ({"ttl": 90}, 90),
        ({"ttl": timedelta(minutes=5)}, 300),
        ({"ttl_hours": 2}, 7200),
        ({"ttl_hours": "0.5"}, 1800),
    ],
)
async def test_entry_ttl_override(
    redis_memory: RedisMemoryService, meta: dict[str, Any], seconds: float
) -> None:
    entries = [entry("short lived", "short", **meta), entry("default", "long")]
    call = {"ttl_hours": 10}
    await redis_memory.add_memory(app_name=APP, user_id="u", memories=entries, custom_metadata=call)
    assert seconds - 30 < await _expires_in_s(redis_memory, "m:short") <= seconds
    assert 10 * 3600 - 30 < await _expires_in_s(redis_memory, "m:long") <= 10 * 3600  # the call's
    [found] = await search(redis_memory, "short lived")
    assert not set(found.custom_metadata) & {"ttl", "ttl_hours"}  # settings never come back


async def test_expired_entry_is_not_returned(redis_memory: RedisMemoryService) -> None:
    entries = [entry("ephemeral pelican", "p", ttl="1s"), entry("lasting pelican")]
    await redis_memory.add_memory(app_name=APP, user_id="u", memories=entries)
    await asyncio.sleep(1.2)
    assert texts_of_entries(await search(redis_memory, "pelican")) == ["lasting pelican"]


async def test_call_level_ttl_on_events(redis_memory: RedisMemoryService) -> None:
    await redis_memory.add_events_to_memory(
        app_name=APP,
        user_id="u",
        session_id="s",
        events=[make_event("otters hold hands", event_id="e1")],
        custom_metadata={"ttl": "600s"},
    )
    assert 570 < await _expires_in_s(redis_memory, "h:s:e1") <= 600


@pytest.mark.parametrize("key", ["ttl", "ttl_hours"])
@pytest.mark.parametrize("value", ["abc", -1, 0, True, "12h", float("nan")])
async def test_invalid_ttl_raises_naming_key_and_value(
    redis_memory: RedisMemoryService, key: str, value: Any
) -> None:
    with pytest.raises(ValueError) as err:
        await redis_memory.add_memory(app_name=APP, user_id="u", memories=[entry("x", "bad", **{key: value})])
    assert repr(key) in str(err.value) and repr(value) in str(err.value)
    with pytest.raises(ValueError, match=re.escape(repr(value))):
        await redis_memory.add_memory(
            app_name=APP, user_id="u", memories=[entry("y", "bad2")], custom_metadata={key: value}
        )
    with pytest.raises(ValueError, match=re.escape(repr(key))):
        await redis_memory.add_events_to_memory(
            app_name=APP, user_id="u", events=[make_event("z")], custom_metadata={key: value}
        )
    assert (await redis_memory.list_memories(app_name=APP, user_id="u")).memories == []  # nothing written


# -- 5. every full-text hit contains a query term in its own text ---------------------------


def _adk_session_1() -> Session:
    """ADK's MOCK_SESSION_1 (tests/unittests/memory/test_in_memory_memory_service.py)."""
    return Session(
        app_name=APP,
        user_id="u",
        id="session-1",
        last_update_time=1000,
        events=[
            make_event("The ADK is a great toolkit.", event_id="event-1a", ts=12345),
            make_event(
                "I agree. The Agent Development Kit (ADK) rocks!",
                author="model",
                event_id="event-1c",
                ts=12347,
            ),
        ],
    )


async def test_search_memory_case_insensitive_match(memory_service: Any) -> None:
    """ADK's test_search_memory_case_insensitive_match, on the reference and on ours."""
    await memory_service.add_session_to_memory(_adk_session_1())
    found = await search(memory_service, "development")
    assert texts_of_entries(found) == ["I agree. The Agent Development Kit (ADK) rocks!"]
    both = await search(memory_service, "How about ADK?")  # ADK's test_search_memory_multiple_matches
    assert sorted(texts_of_entries(both)) == [
        "I agree. The Agent Development Kit (ADK) rocks!",
        "The ADK is a great toolkit.",
    ]


async def test_every_hit_contains_a_query_term(redis_memory: RedisMemoryService) -> None:
    turns = [
        ("user", "Emma starts school next week"),
        ("model", "Understood, no peanuts."),
        ("user", "She is allergic to peanuts"),
        ("model", "I will remember the allergy."),
        ("user", "The school bus comes at eight"),
    ]
    session = Session(
        app_name=APP,
        user_id="u",
        id="s1",
        events=[make_event(t, author=a, event_id=f"e{n}") for n, (a, t) in enumerate(turns)],
    )
    await redis_memory.add_session_to_memory(session)
    for query in ["Emma school", "peanuts allergy", "school bus", "remember"]:
        terms = set(query_terms(query))
        found = await search(redis_memory, query)
        assert found, query
        for m in found:
            own = set(query_terms(texts_of_entries([m])[0])) | set(query_terms(m.author or ""))
            assert own & terms, (query, texts_of_entries([m]))
    # the exchange still raises the rank: of two turns saying "walnuts", the one answering a question
    # about an allergy comes first, though it is the longer one
    await redis_memory.add_session_to_memory(
        Session(
            app_name=APP,
            user_id="u",
            id="s2",
            events=[
                make_event("Which foods cause the rash, the allergist asked", event_id="q"),
                make_event(
                    "Walnuts, and maybe also the cashews from the corner shop", author="model", event_id="a"
                ),
                make_event("We bought walnuts today", event_id="b"),
            ],
        )
    )
    ranked = texts_of_entries(await search(redis_memory, "walnuts allergist"))
    assert ranked.index("Walnuts, and maybe also the cashews from the corner shop") < ranked.index(
        "We bought walnuts today"
    )


# -- 6. scores, minimum score, result limit ---------------------------------------------------


async def _orchard(memory: RedisMemoryService) -> None:
    texts = ["apple pie recipe with apple slices", "apple tree", "the pie was good", "pears and plums"]
    entries = [entry(t, f"f{n}") for n, t in enumerate(texts)]
    await memory.add_memory(app_name=APP, user_id="u", memories=entries)


async def test_entries_carry_their_score(redis_memory: RedisMemoryService) -> None:
    await _orchard(redis_memory)
    found = await search(redis_memory, "apple pie")
    scores = [m.custom_metadata["score"] for m in found]
    assert len(found) == 3 and all(isinstance(s, float) and s > 0 for s in scores)
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    assert texts_of_entries(found)[0] == "apple pie recipe with apple slices"


async def test_min_score_and_search_limit(
    redis_client: Any, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = RedisMemoryService(client=redis_client, key_prefix=prefix)
    await _orchard(base)
    scores = [m.custom_metadata["score"] for m in await search(base, "apple pie")]
    cut = (scores[0] + scores[1]) / 2
    strict = RedisMemoryService(client=redis_client, key_prefix=prefix, min_score=cut)
    assert len(await search(strict, "apple pie")) == 1
    one = RedisMemoryService(client=redis_client, key_prefix=prefix, search_limit=1)
    assert texts_of_entries(await search(one, "apple pie")) == ["apple pie recipe with apple slices"]
    monkeypatch.setenv("MEMORY_MIN_SCORE", str(cut))
    monkeypatch.setenv("MEMORY_SEARCH_LIMIT", "2")
    from_env = RedisMemoryService(client=redis_client, key_prefix=prefix)
    assert (from_env.min_score, from_env.search_limit) == (cut, 2)
    assert len(await search(from_env, "apple pie")) == 1
    explicit = RedisMemoryService(client=redis_client, key_prefix=prefix, min_score=0.0, search_limit=5)
    assert len(await search(explicit, "apple pie")) == 3  # arguments win over the environment
    with pytest.raises(ValueError):
        RedisMemoryService(client=redis_client, key_prefix=prefix, min_score=-1)


def test_min_score_and_search_limit_from_the_url(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    sep = "&" if "?" in redis_url else "?"
    svc = RedisMemoryService(f"{redis_url}{sep}min_score=2.5&search_limit=4")
    assert (svc.min_score, svc.search_limit) == (2.5, 4)
    asyncio.run(svc.close())
    from adk_redis.registry import memory_factory

    made = memory_factory(f"{redis_url}{sep}min_score=1.5&search_limit=3")
    assert isinstance(made, RedisMemoryService) and (made.min_score, made.search_limit) == (1.5, 3)
    asyncio.run(made.close())
    with pytest.raises(ConfigurationError, match="min_score"):
        RedisMemoryService(f"{redis_url}{sep}min_score=abc")


async def test_hit_carries_its_exchange_as_context(redis_memory: RedisMemoryService) -> None:
    events = [
        make_event("Which snacks are safe for Emma?", event_id="q"),
        make_event("Rice crackers; no peanuts.", author="model", event_id="a"),
        make_event("Thanks, noted", event_id="t"),
    ]
    await redis_memory.add_session_to_memory(Session(app_name=APP, user_id="u", id="s1", events=events))
    [hit] = await search(redis_memory, "peanuts")
    assert hit.custom_metadata["context"] == [
        {"id": "h:s1:q", "author": "user", "text": "Which snacks are safe for Emma?"},
        {"id": "h:s1:t", "author": "user", "text": "Thanks, noted"},
    ]
    # a deleted neighbour's text is never shown
    await redis_memory.delete_memory(app_name=APP, user_id="u", memory_id="h:s1:q")
    [hit] = await search(redis_memory, "peanuts")
    assert [c["id"] for c in hit.custom_metadata["context"]] == ["h:s1:t"]


async def test_turns_indexed_before_the_hit_rule_are_checked(redis_memory: RedisMemoryService) -> None:
    """A turn indexed by an older version (format 1 payload, its neighbour's words as plain postings) is
    not returned for a word only its neighbour said."""
    ik = redis_memory.keys.user_memory_index(APP, "u")
    text = "The ADK is a great toolkit."
    legacy = json.dumps(
        {
            "v": 1,
            "src": "history",
            "content": {"parts": [{"text": text}], "role": "user"},
            "author": "user",
            "ts": 12345.0,
            "sid": "s",
            "eid": "e1",
        },
        separators=(",", ":"),
    )
    # what an older version stored: the neighbour's word "development" indexed like the turn's own
    await redis_memory.index.put(ik, "h:s:e1", f"{text} development", legacy, ttl_ms=60_000)
    assert await search(redis_memory, "development") == []
    assert texts_of_entries(await search(redis_memory, "toolkit development")) == [text]
