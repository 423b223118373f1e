"""The design's application API (adk_redis.store._api) on fakeredis, a real server and in memory.

Every store runs its I/O on its own loop thread, so tests inspect Redis with
their own clients: a second fakeredis client on the same FakeServer, or a
client of the real server (``real_client``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis
from google.adk.sessions.base_session_service import BaseSessionService

from adk_redis import (
    CorruptedDataError,
    KeySchema,
    RedisSessionService,
    RedisSettings,
    RedisUnavailableError,
    SessionAccessError,
    SessionStoreConfig,
    UnknownSessionError,
    create_session_store,
    get_agent_memory,
    get_config,
    get_session_history,
    get_session_store,
    get_session_store_stats,
    get_user_context,
    shutdown_session_store,
    store_agent_memory,
    store_user_context,
)
from adk_redis.memory._cross_session import CrossSessionMemory
from adk_redis.store import SessionStore
from adk_redis.store._api import SessionLimitError

from .servers import free_port

ROOT = Path(__file__).resolve().parents[1]
NO_CLEANUP = SessionStoreConfig(cleanup_interval_minutes=0)


async def _drop(client: Any, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)


@dataclass
class Env:
    """How to build stores on one backend, and a client of the same data for the test's loop."""

    kind: str
    prefix: str
    redis_url: str
    server: Any = None
    stores: list[SessionStore] | None = None

    def store(self, config: SessionStoreConfig = NO_CLEANUP, **settings: Any) -> SessionStore:
        base = RedisSettings(redis_url=self.redis_url, redis_key_prefix=self.prefix, **settings)
        if self.kind == "memory":
            store = create_session_store(config, force_memory=True, settings=base)
        elif self.kind == "fakeredis":
            client = fakeredis.FakeAsyncRedis(server=self.server)
            store = create_session_store(config, client=client, settings=base)
        else:
            store = create_session_store(config, settings=base)
        assert self.stores is not None
        self.stores.append(store)
        return store

    def client(self) -> Any:
        """A client bound to the caller's loop (None in memory mode)."""
        if self.kind == "memory":
            return None
        if self.kind == "fakeredis":
            return fakeredis.FakeAsyncRedis(server=self.server)
        return aioredis.Redis.from_url(self.redis_url)

    def adk(self, store: SessionStore) -> BaseSessionService:
        """The session data through ADK's interface, on the caller's loop."""
        if self.kind == "memory":
            return store.service
        return RedisSessionService(client=self.client(), key_prefix=self.prefix)


@pytest.fixture(params=["fakeredis", "redis", "memory"])
def env(request: pytest.FixtureRequest, prefix: str, redis_url: str) -> Iterator[Env]:
    e = Env(request.param, prefix, redis_url, stores=[])
    if e.kind == "fakeredis":
        e.server = fakeredis.FakeServer()
    yield e
    for store in e.stores or []:
        store.close()
    if e.kind == "redis":
        asyncio.run(_cleanup_real(redis_url, prefix))


async def _cleanup_real(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    await _drop(client, prefix)
    await client.aclose()


@pytest.fixture(params=["fakeredis", "redis"])
def redis_env(request: pytest.FixtureRequest, prefix: str, redis_url: str) -> Iterator[Env]:
    e = Env(request.param, prefix, redis_url, stores=[])
    if e.kind == "fakeredis":
        e.server = fakeredis.FakeServer()
    yield e
    for store in e.stores or []:
        store.close()
    if e.kind == "redis":
        asyncio.run(_cleanup_real(redis_url, prefix))


# -- sync API from plain synchronous code --------------------------------------
def test_sync_api(env: Env) -> None:
    store = env.store()
    assert store.store_type == ("memory" if env.kind == "memory" else "redis")
    session = store.ensure_session("session_123", user_id=42, title="Research Session", status="active")
    assert session["id"] == "session_123"
    assert session["user_id"] == "42"
    assert session["app_name"] == env.prefix
    assert (session["title"], session["status"], session["messages"]) == ("Research Session", "active", [])

    message = store.add_message(
        "session_123", {"role": "user", "content": "Hello, world!", "metadata": {"source": "web"}}
    )
    assert message["role"] == "user" and message["content"] == "Hello, world!"
    assert message["metadata"] == {"source": "web"}
    assert isinstance(message["timestamp"], float) and message["id"]
    store.add_message("session_123", {"role": "assistant", "content": "Hi there"})

    data = store.get_session("session_123", user_id=42)
    assert data is not None
    assert [(m["role"], m["content"]) for m in data["messages"]] == [
        ("user", "Hello, world!"),
        ("assistant", "Hi there"),
    ]
    assert data["messages"][0] == message
    assert data["message_count"] == 2
    assert store.get_session("session_123") == data  # no user given: no ownership check
    assert store.get_session("nope", user_id=42) is None

    # ensure_session again: same session; given fields update it, messages stay.
    again = store.ensure_session("session_123", user_id=42, status="closed", topic="ai")
    assert again["status"] == "closed" and again["title"] == "Research Session"
    assert again["metadata"] == {"topic": "ai"}
    assert [m["content"] for m in again["messages"]] == ["Hello, world!", "Hi there"]
    assert store.ensure_session("session_123")["user_id"] == "42"  # None: the existing owner


def test_hostile_ids_stay_in_their_keys(env: Env) -> None:
    store = env.store()
    sid, uid = "a:b{c}*?[x] %41", "u:{1}*"
    store.ensure_session(sid, user_id=uid)
    store.ensure_session("a", user_id="b")
    store.add_message(sid, {"role": "user", "content": "x"})
    data = store.get_session(sid, user_id=uid)
    assert data is not None and data["user_id"] == uid and data["message_count"] == 1
    assert store.get_session("a", user_id="b") is not None
    assert store.get_session(sid, user_id="u") is None
    assert {s["id"] for s in store.list_sessions()} == {sid, "a"}


def test_persists_across_store_instances(redis_env: Env) -> None:
    first = redis_env.store()
    first.ensure_session("s1", user_id=7, title="T")
    first.add_message("s1", {"role": "user", "content": "kept"})
    first.close()
    second = redis_env.store()
    data = second.get_session("s1", user_id=7)
    assert data is not None and [m["content"] for m in data["messages"]] == ["kept"]
    assert second.add_message("s1", {"role": "assistant", "content": "more"})["role"] == "assistant"


# -- async API and the sync API inside a running loop ----------------------------
async def test_async_api(env: Env) -> None:
    store = env.store()
    session = await store.ensure_session_async("session_123", user_id=42, title="Research Session")
    assert session["status"] == "active"
    msg = await store.add_message_async("session_123", {"role": "assistant", "content": "Response"})
    assert msg["role"] == "assistant"
    data = await store.get_session_async("session_123", user_id=42)
    assert data is not None and [m["id"] for m in data["messages"]] == [msg["id"]]
    assert await store.get_session_async("session_123", user_id=43) is None
    listed = await store.list_sessions_async()
    assert [s["id"] for s in listed] == ["session_123"] and "messages" not in listed[0]
    assert await store.delete_session_async("session_123", user_id=42) is True
    assert await store.get_session_async("session_123", user_id=42) is None
    with pytest.raises(UnknownSessionError):
        await store.add_message_async("session_123", {"role": "user", "content": "x"})


async def test_sync_methods_inside_a_running_loop(env: Env) -> None:
    """The design mixes sync store calls and awaits: they block this loop briefly and work."""
    store = env.store()
    store.ensure_session("s", user_id=1)
    await store.add_message_async("s", {"role": "user", "content": "a"})
    store.add_message("s", {"role": "assistant", "content": "b"})
    data = store.get_session("s", user_id=1)
    assert data is not None and [m["content"] for m in data["messages"]] == ["a", "b"]


async def test_sync_method_on_the_store_loop_raises(env: Env) -> None:
    store = env.store()

    async def on_store_loop() -> None:
        store.get_session("s")

    loop = store._runner.loop
    with pytest.raises(RuntimeError, match="_async"):
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(on_store_loop(), loop))


def test_concurrent_writers_lose_nothing(env: Env) -> None:
    store = env.store()
    other = env.store() if env.kind != "memory" else store
    store.ensure_session("busy", user_id="u")

    async def burst(s: SessionStore, tag: str) -> None:
        await asyncio.gather(
            *(s.add_message_async("busy", {"role": "user", "content": f"{tag}{i}"}) for i in range(15))
        )

    def thread_writer() -> None:
        for i in range(10):
            other.add_message("busy", {"role": "assistant", "content": f"t{i}"})

    t = threading.Thread(target=thread_writer)
    t.start()
    asyncio.run(burst(store, "a"))
    t.join()
    data = store.get_session("busy", user_id="u")
    assert data is not None
    assert sorted(m["content"] for m in data["messages"]) == sorted(
        [f"a{i}" for i in range(15)] + [f"t{i}" for i in range(10)]
    )


# -- ownership and security stats ----------------------------------------------
def test_wrong_user_is_denied_and_counted(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    store = env.store(SessionStoreConfig(cleanup_interval_minutes=0, flag_threshold=2))
    store.ensure_session("mine", user_id=42)
    store.add_message("mine", {"role": "user", "content": "secret"})
    assert store.get_security_stats()["total_failed_attempts"] == 0
    with caplog.at_level(logging.WARNING, logger="adk_redis.facade"):
        assert store.get_session("mine", user_id=43) is None
    assert "denied" in caplog.text
    stats = store.get_security_stats()
    assert (stats["total_failed_attempts"], stats["flagged_sessions"]) == (1, 0)
    with pytest.raises(SessionAccessError):
        store.ensure_session("mine", user_id="attacker")
    assert store.delete_session("mine", user_id=43) is False
    stats = store.get_security_stats()
    assert stats["total_failed_attempts"] == 3
    assert stats["flagged_sessions"] == 1 and stats["flagged_session_ids"] == ["mine"]
    data = store.get_session("mine", user_id=42)  # the owner is unaffected
    assert data is not None and data["messages"][0]["content"] == "secret"
    assert store.get_session("missing", user_id=43) is None  # unknown ids are not failed attempts
    assert store.get_security_stats()["total_failed_attempts"] == 3


def test_security_counts_are_shared_by_instances(redis_env: Env) -> None:
    a, b = redis_env.store(), redis_env.store()
    a.ensure_session("s", user_id=1)
    assert b.get_session("s", user_id=2) is None
    assert a.get_session("s", user_id=3) is None
    assert a.get_security_stats()["total_failed_attempts"] == 2
    assert b.get_security_stats()["total_failed_attempts"] == 2


def test_add_message_to_unknown_session_raises(env: Env) -> None:
    store = env.store()
    with pytest.raises(UnknownSessionError, match="ensure_session"):
        store.add_message("ghost", {"role": "user", "content": "hi"})


def test_invalid_input(env: Env) -> None:
    store = env.store()
    store.ensure_session("s", user_id=1)
    with pytest.raises(TypeError, match="content"):
        store.add_message("s", {"role": "user"})
    with pytest.raises(ValueError, match="role"):
        store.add_message("s", {"role": "", "content": "x"})
    with pytest.raises(TypeError, match="JSON"):
        store.add_message("s", {"role": "user", "content": "x", "metadata": {"f": object()}})
    with pytest.raises(ValueError, match="empty"):
        store.ensure_session("  ", user_id=1)
    data = store.get_session("s")
    assert data is not None and data["messages"] == []


def test_max_sessions_is_enforced(env: Env) -> None:
    store = env.store(SessionStoreConfig(cleanup_interval_minutes=0, max_sessions=2))
    store.ensure_session("a", user_id=1)
    store.ensure_session("b", user_id=2)
    with pytest.raises(SessionLimitError):
        store.ensure_session("c", user_id=3)
    assert store.get_session("c") is None
    store.ensure_session("a", user_id=1)  # existing sessions are fine


# -- ADK sees the same conversation ---------------------------------------------
async def test_conversation_is_an_adk_session(env: Env) -> None:
    store = env.store()
    await store.ensure_session_async("conv", user_id=42, title="AI Safety Research", status="active", a=1)
    await store.add_message_async("conv", {"role": "user", "content": "Q", "metadata": {"source": "web"}})
    await store.add_message_async("conv", {"role": "assistant", "content": "A"})
    await store.add_message_async("conv", {"role": "system", "content": "S"})
    adk = env.adk(store)
    session = await adk.get_session(app_name=env.prefix, user_id="42", session_id="conv")
    assert session is not None
    assert [e.author for e in session.events] == ["user", "assistant", "system"]
    texts = [e.content.parts[0].text for e in session.events if e.content and e.content.parts]
    assert texts == ["Q", "A", "S"]
    assert [e.content.role for e in session.events if e.content] == ["user", "model", "model"]
    assert session.events[0].custom_metadata == {"source": "web"}
    assert session.state["store:title"] == "AI Safety Research"
    assert session.state["store:status"] == "active"
    assert session.state["store:metadata"] == {"a": 1}
    listed = await adk.list_sessions(app_name=env.prefix, user_id="42")
    assert [s.id for s in listed.sessions] == ["conv"]
    if isinstance(adk, RedisSessionService):
        await adk.client.aclose()


async def test_adk_session_is_adopted_by_ensure_session(redis_env: Env) -> None:
    """A session made through ADK (e.g. by a Runner) becomes visible to the facade."""
    store = redis_env.store()
    adk = redis_env.adk(store)
    assert isinstance(adk, RedisSessionService)
    from google.adk.events.event import Event
    from google.genai import types

    s = await adk.create_session(app_name=redis_env.prefix, user_id="9", session_id="from-adk")
    await adk.append_event(
        s, Event(author="helper", content=types.Content(role="model", parts=[types.Part(text="hi")]))
    )
    data = await store.ensure_session_async("from-adk", user_id=9)
    assert [(m["role"], m["content"]) for m in data["messages"]] == [("helper", "hi")]
    await store.add_message_async("from-adk", {"role": "user", "content": "thanks"})
    s2 = await adk.get_session(app_name=redis_env.prefix, user_id="9", session_id="from-adk")
    assert s2 is not None and [e.author for e in s2.events] == ["helper", "user"]
    await adk.client.aclose()


# -- expiry and cleanup -----------------------------------------------------------
async def test_cleanup_expired_sessions(env: Env) -> None:
    ttl_hours = 1.2 / 3600  # about one second
    store = env.store(SessionStoreConfig(cleanup_interval_minutes=0, session_ttl_hours=ttl_hours))
    store.ensure_session("old1", user_id=1)
    store.ensure_session("old2", user_id=2)
    store.add_message("old2", {"role": "user", "content": "x"})
    assert store.get_stats()["total_sessions"] == 2
    store.ensure_session("fresh", user_id=3)
    for _ in range(8):  # writes to "fresh" keep it (and the app's index key) alive
        await asyncio.sleep(0.2)
        await store.add_message_async("fresh", {"role": "user", "content": "tick"})
    assert store.get_stats()["total_sessions"] == 1
    assert await store.cleanup_expired_sessions_async() == 2
    assert store.cleanup_expired_sessions() == 0
    assert store.get_session("old1") is None
    assert store.get_session("fresh") is not None
    if env.kind != "memory":
        client = env.client()
        keys = KeySchema(env.prefix)
        assert await client.zcard(keys.app_index(env.prefix)) == 1
        assert await client.exists(keys.session_owner(env.prefix, "old2")) == 0
        assert await client.exists(keys.session_owner(env.prefix, "fresh")) == 1
        await client.aclose()
    with pytest.raises(UnknownSessionError):
        store.add_message("old1", {"role": "user", "content": "late"})


async def test_background_cleanup_runs(redis_env: Env) -> None:
    config = SessionStoreConfig(cleanup_interval_minutes=0.2 / 60, session_ttl_hours=0.5 / 3600)
    store = redis_env.store(config)
    store.ensure_session("keepalive", user_id=2)
    store.ensure_session("a", user_id=1)
    client = redis_env.client()
    index = KeySchema(redis_env.prefix).app_index(redis_env.prefix)
    deadline = time.monotonic() + 10
    members = await client.zrange(index, 0, -1)
    assert b"1:a" in members
    while b"1:a" in members and time.monotonic() < deadline:
        # writes to another session keep the index key alive, so only the cleanup can drop "a"
        await store.add_message_async("keepalive", {"role": "user", "content": "tick"})
        await asyncio.sleep(0.1)
        members = await client.zrange(index, 0, -1)
    assert members == [b"2:keepalive"]
    await client.aclose()


# -- statistics --------------------------------------------------------------------
def test_stats(env: Env) -> None:
    store = env.store()
    for i in range(3):
        store.ensure_session(f"s{i}", user_id=i)
    stats = store.get_stats(include_memory=True)
    assert stats["store_type"] == store.store_type
    assert stats["total_sessions"] == 3
    assert stats["redis"]["redis_available"] is (env.kind != "memory")
    assert stats["memory"]["history_entries"] == 3
    redis_stats = store.get_redis_stats()
    for key in ("connection_retries", "pool_created_connections", "pool_in_use_connections", "last_error"):
        assert key in redis_stats
    if env.kind != "memory":
        assert redis_stats["pool_created_connections"] >= 1
        assert redis_stats["ping_ms"] is not None


def test_export_import_round_trip(redis_env: Env) -> None:
    source = redis_env.store()
    source.ensure_session("x", user_id=5, title="T", status="open", tag="v")
    backup = asyncio.run(source.list_sessions_async())
    target = create_session_store(NO_CLEANUP, force_memory=True)
    try:
        for data in backup:
            target.ensure_session(data["id"], **data)
        copy = target.get_session("x", user_id=5)
        assert copy is not None
        assert (copy["title"], copy["status"], copy["metadata"]) == ("T", "open", {"tag": "v"})
    finally:
        target.close()


# -- factory, fallback, singleton and module functions -----------------------------
def test_get_config_and_force_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_KEY_PREFIX", "cfgtest")
    monkeypatch.setenv("REDIS_ENABLED", "false")
    monkeypatch.delenv("SESSION_TTL_HOURS", raising=False)
    config = get_config()
    assert config.redis_config.redis_enabled is False
    # One set of defaults (issue 11): the store's TTL is SESSION_TTL_HOURS (unset: never expires), its cap
    # STORE_MAX_SESSIONS (10,000).
    assert config.session_store.app_name == "cfgtest" and config.session_store.session_ttl_hours is None
    assert config.session_store.max_sessions == 10_000
    monkeypatch.setenv("SESSION_TTL_HOURS", "6")
    monkeypatch.setenv("STORE_MAX_SESSIONS", "77")
    assert (get_config().session_store.session_ttl_hours, get_config().session_store.max_sessions) == (6, 77)
    monkeypatch.delenv("SESSION_TTL_HOURS")
    monkeypatch.delenv("STORE_MAX_SESSIONS")
    store = create_session_store(SessionStoreConfig(max_sessions=5000, session_ttl_hours=48))
    try:
        assert store.store_type == "memory" and store.app_name == "cfgtest"
        assert store.get_stats()["redis"]["last_error"] == "Redis disabled (REDIS_ENABLED=false)"
    finally:
        store.close()


def test_unreachable_redis_falls_back_or_raises(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    settings = RedisSettings(redis_url=url, redis_connect_timeout=0.5, redis_retry_attempts=0)
    with caplog.at_level(logging.WARNING, logger="adk_redis.facade"):
        store = create_session_store(NO_CLEANUP, settings=settings)
    try:
        assert store.store_type == "memory"
        assert "unreachable" in caplog.text and "hunter2" not in caplog.text
        store.ensure_session("s", user_id=1)
        assert store.add_message("s", {"role": "user", "content": "x"})["content"] == "x"
    finally:
        store.close()
    strict = settings.model_copy(update={"redis_fallback_to_memory": False})
    with pytest.raises(RedisUnavailableError, match="unreachable"):
        create_session_store(NO_CLEANUP, settings=strict)


@pytest.mark.parametrize("kind", ["redis", "memory"])
async def test_singleton_and_module_functions(
    kind: str, monkeypatch: pytest.MonkeyPatch, redis_url: str, prefix: str, real_client: Any
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("REDIS_KEY_PREFIX", prefix)
    monkeypatch.setenv("REDIS_ENABLED", "true" if kind == "redis" else "false")
    await shutdown_session_store()
    try:
        store = get_session_store()
        assert get_session_store() is store and store.store_type == kind
        store.ensure_session("h1", user_id=42, title="first")
        await asyncio.sleep(0.01)
        await store.ensure_session_async("h2", user_id=42, title="second")
        await store_user_context(user_id=42, context_key="preferences", context_data={"theme": "dark"})
        assert await get_user_context(user_id=42, context_key="preferences") == {"theme": "dark"}
        assert await get_user_context(user_id="42", context_key="nope") is None
        await store_agent_memory(agent_id="research_agent", memory_key="patterns", memory_data={"p": [1]})
        assert await get_agent_memory(agent_id="research_agent", memory_key="patterns") == {"p": [1]}
        history = await get_session_history(user_id=42, limit=10)
        assert [h["session_id"] for h in history] == ["h2", "h1"]
        assert history[0]["summary"]["title"] == "second"
        stats = get_session_store_stats()
        assert stats["store_type"] == kind and stats["total_sessions"] == 2
        assert stats["redis"]["redis_available"] is (kind == "redis")
        if kind == "redis":  # the same documents through the cross-session API
            memory = CrossSessionMemory(real_client, KeySchema(prefix), RedisSettings(), app_name=prefix)
            assert await memory.get_user_context(42, "preferences") == {"theme": "dark"}
    finally:
        await shutdown_session_store()
    assert store.closed
    assert get_session_store() is not store
    await shutdown_session_store()


# -- the design's Complete Integration example ---------------------------------------
def _run_sample(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", str(ROOT / "samples" / "research_workflow.py")],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


async def test_research_workflow_sample_on_real_server(redis_url: str, prefix: str, real_client: Any) -> None:
    proc = await asyncio.to_thread(
        _run_sample, {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix, "REDIS_ENABLED": "true"}
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Using redis store with 1 sessions"
    assert "ResourceWarning" not in proc.stderr  # the pool was closed by shutdown_session_store
    service = RedisSessionService(client=real_client, key_prefix=prefix)
    session = await service.get_session(app_name=prefix, user_id="123", session_id="research_001")
    assert session is not None
    assert [e.author for e in session.events] == ["user", "assistant", "system"]
    assert session.events[0].content is not None and session.events[0].content.parts
    assert session.events[0].content.parts[0].text == "Research AI safety developments"
    assert session.state["store:title"] == "AI Safety Research"
    memory = CrossSessionMemory(real_client, KeySchema(prefix), RedisSettings(), app_name=prefix)
    assert (await memory.get_user_context(123, "research_prefs") or {})["depth"] == "comprehensive"
    assert (await memory.get_agent_memory("research_agent", "user_patterns") or {})["user_id"] == 123
    assert [h["session_id"] for h in await memory.get_session_history(123)] == ["research_001"]


def test_research_workflow_sample_in_memory_mode() -> None:
    proc = _run_sample({"REDIS_ENABLED": "false"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Using memory store with 1 sessions"
    assert "ResourceWarning" not in proc.stderr


def test_corrupted_owner_free_paths_do_not_crash(redis_env: Env) -> None:
    """A session whose data vanished (e.g. evicted) reads as missing and its owner record is dropped."""
    store = redis_env.store()
    store.ensure_session("gone", user_id=1)

    async def evict() -> None:
        client = redis_env.client()
        await client.delete(KeySchema(redis_env.prefix).session(redis_env.prefix, "1", "gone").meta)
        await client.aclose()

    asyncio.run(evict())
    assert store.get_session("gone", user_id=1) is None
    with pytest.raises(UnknownSessionError):
        store.add_message("gone", {"role": "user", "content": "x"})
    assert store.ensure_session("gone", user_id=2)["user_id"] == "2"  # the id is free again


def test_corrupted_event_surfaces_as_error(redis_env: Env) -> None:
    store = redis_env.store()
    store.ensure_session("bad", user_id=1)
    store.add_message("bad", {"role": "user", "content": "x"})

    async def corrupt() -> None:
        client = redis_env.client()
        log = KeySchema(redis_env.prefix).session(redis_env.prefix, "1", "bad").log
        await client.lset(log, 0, "junk")
        await client.aclose()

    asyncio.run(corrupt())
    with pytest.raises(CorruptedDataError):
        store.get_session("bad", user_id=1)
