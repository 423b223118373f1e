"""RedisSessionService behaviour beyond ADK's in-memory reference: stale writers,
lossless events, storage layout, TTL, corrupted data, settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import fakeredis
import hypothesis.strategies as st
import pytest
from google.adk.errors import StaleSessionError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions, EventCompaction
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.sessions.database_session_service import DatabaseSessionService
from google.genai import types
from hypothesis import given, settings

from adk_redis import ConfigurationError, CorruptedDataError, RedisSessionService, RedisSettings
from adk_redis.keys import KeySchema, escape, unescape
from tests.helpers import text_event


@pytest.fixture(params=["adk_database", "fakeredis", "redis"])
async def persistent_service(
    request: pytest.FixtureRequest, prefix: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[Any]:
    """ADK's DatabaseSessionService (reference for persistent semantics) and ours."""
    if request.param == "adk_database":
        svc: Any = DatabaseSessionService(f"sqlite+aiosqlite:///{tmp_path / 'ref.db'}")
        yield svc
        await svc.close()
        return
    if request.param == "fakeredis":
        yield RedisSessionService(client=fakeredis.FakeAsyncRedis(), key_prefix=prefix)
        return
    svc = RedisSessionService(redis_url, key_prefix=prefix)
    yield svc
    keys = [k async for k in svc.client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await svc.client.delete(*keys)
    await svc.close()


async def test_stale_writer_is_rejected(persistent_service: Any) -> None:
    svc = persistent_service
    s = await svc.create_session(app_name="app", user_id="u")
    a = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    b = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    await svc.append_event(a, text_event("a1"))
    await svc.append_event(a, text_event("a2"))  # the last writer keeps appending
    with pytest.raises(StaleSessionError):
        await svc.append_event(b, text_event("b1"))
    fresh = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    await svc.append_event(fresh, text_event("b1 retried"))
    final = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert [e.content.parts[0].text for e in final.events] == ["a1", "a2", "b1 retried"]


async def test_markerless_session_object(persistent_service: Any) -> None:
    """A hand-built Session without a storage marker falls back to the timestamp/last-event check."""
    from google.adk.sessions.session import Session

    svc = persistent_service
    s = await svc.create_session(app_name="app", user_id="u")
    await svc.append_event(s, text_event("one"))
    loaded = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    manual = Session(
        id=s.id,
        app_name="app",
        user_id="u",
        state={},
        events=list(loaded.events),
        last_update_time=loaded.last_update_time - 5,
    )
    await svc.append_event(manual, text_event("two"))  # matches storage's last event: accepted
    old = Session(id=s.id, app_name="app", user_id="u", state={}, events=[], last_update_time=0.0)
    with pytest.raises(StaleSessionError):
        await svc.append_event(old, text_event("three"))


def rich_event() -> Event:
    return Event(
        author="agent",
        invocation_id="inv-1",
        branch="root.child",
        content=types.Content(
            role="model",
            parts=[
                types.Part(text="caf\u00e9 \U0001f600"),
                types.Part(
                    function_call=types.FunctionCall(id="fc1", name="lookup", args={"q": "x", "n": 2})
                ),
                types.Part(
                    function_response=types.FunctionResponse(
                        id="fc1", name="lookup", response={"ok": [1, None]}
                    )
                ),
                types.Part(
                    inline_data=types.Blob(data=bytes(range(256)), mime_type="application/octet-stream")
                ),
                types.Part(text="thinking", thought=True, thought_signature=b"\x00sig\xff"),
            ],
        ),
        actions=EventActions(
            state_delta={"k": {"nested": [1, 2.5, "s", None, True]}},
            artifact_delta={"file.txt": 3},
            transfer_to_agent="other_agent",
            escalate=True,
            skip_summarization=True,
            requested_auth_configs={},
            compaction=EventCompaction(
                start_timestamp=1.0,
                end_timestamp=2.0,
                compacted_content=types.Content(role="model", parts=[types.Part(text="sum")]),
            ),
        ),
        grounding_metadata=types.GroundingMetadata(web_search_queries=["q1"]),
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=7, candidates_token_count=3
        ),
        custom_metadata={"trace": {"id": 1}, "list": [1, "2"]},
        long_running_tool_ids={"fc1"},
        turn_complete=True,
        error_code="E1",
        error_message="boom",
        interrupted=False,
        finish_reason=types.FinishReason.STOP,
    )


async def test_events_round_trip_losslessly(redis_session_service: RedisSessionService) -> None:
    svc = redis_session_service
    s = await svc.create_session(app_name="app", user_id="u")
    event = rich_event()
    sent = event.model_copy(deep=True)
    await svc.append_event(s, event)
    got = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None
    assert got.events[0] == sent
    assert got.events[0].content.parts[3].inline_data.data == bytes(range(256))
    assert got.events[0].model_dump() == sent.model_dump()


async def test_keys_live_under_prefix_and_share_a_slot(redis_session_service: RedisSessionService) -> None:
    svc = redis_session_service
    s = await svc.create_session(app_name="my app", user_id="u:1", state={"app:x": 1, "user:y": 2})
    await svc.append_event(s, text_event("hi"))
    keys = sorted(k.decode() for k in await svc.client.keys(f"{svc.keys.prefix}:*"))
    p = svc.keys.prefix
    assert keys == sorted(
        [
            f"{p}:session:{{my%20app:u%3A1}}:s:{s.id}",
            f"{p}:session:{{my%20app:u%3A1}}:s:{s.id}:log",
            f"{p}:session:{{my%20app:u%3A1}}:s:{s.id}:ids",
            f"{p}:session:{{my%20app:u%3A1}}:s:{s.id}:tm",
            f"{p}:session:{{my%20app:u%3A1}}:user_state",
            f"{p}:session:{{my%20app:u%3A1}}:index",
            f"{p}:session:{{my%20app:u%3A1}}:created",
            f"{p}:session:{{my%20app}}:app_state",
            f"{p}:session:{{my%20app}}:index",
            f"{p}:session:{{my%20app}}:created",
        ]
    )
    from redis.cluster import key_slot

    sk = svc.keys.session("my app", "u:1", s.id)
    slots = {key_slot(k.encode()) for k in (*sk.all, svc.keys.user_state("my app", "u:1"))}
    assert len(slots) == 1


@pytest.mark.parametrize("value", ["", "a", "a:b", "%", "%25", "{x}", "用户 1", "\x00\n", "a" * 50])
def test_escape_round_trip_and_safety(value: str) -> None:
    enc = escape(value)
    assert unescape(enc) == value
    assert not set(enc) & set(":{}*?[] \\\n")


def test_escape_rejects_huge_and_non_str() -> None:
    with pytest.raises(ValueError, match="at most"):
        escape("x" * 5000)
    with pytest.raises(TypeError):
        escape(42)  # type: ignore[arg-type]


async def test_huge_id_is_a_clear_error(redis_session_service: RedisSessionService) -> None:
    with pytest.raises(ValueError, match="at most"):
        await redis_session_service.create_session(app_name="app", user_id="u" * 5000)


async def test_non_json_state_is_coerced_like_database_service(
    redis_session_service: RedisSessionService,
) -> None:
    svc = redis_session_service
    s = await svc.create_session(app_name="app", user_id="u", state={"f": lambda: 1, "ok": 1})
    got = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None and got.state["ok"] == 1 and isinstance(got.state["f"], str)


async def test_sliding_ttl_expires_sessions_and_listings(prefix: str, redis_url: str) -> None:
    svc = RedisSessionService(redis_url, key_prefix=prefix, session_ttl_hours=1.5 / 3600)
    try:
        s = await svc.create_session(app_name="app", user_id="u")
        keep = await svc.create_session(app_name="app", user_id="u")
        await asyncio.sleep(1.0)
        await svc.append_event(keep, text_event("refresh"))  # sliding: refreshed by the write
        ttl = await svc.client.ttl(svc.keys.session("app", "u", keep.id).log)
        assert 0 < ttl <= 2
        await asyncio.sleep(1.0)
        assert await svc.get_session(app_name="app", user_id="u", session_id=s.id) is None
        assert [x.id for x in (await svc.list_sessions(app_name="app", user_id="u")).sessions] == [keep.id]
        assert [x.id for x in (await svc.list_sessions(app_name="app")).sessions] == [keep.id]
        # the lazy cleanup dropped the dead index entries
        assert await svc.client.zcard(svc.keys.user_index("app", "u")) == 1
        assert await svc.client.zcard(svc.keys.app_index("app")) == 1
    finally:
        keys = [k async for k in svc.client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await svc.client.delete(*keys)
        await svc.close()


async def test_no_ttl_by_default(redis_session_service: RedisSessionService) -> None:
    svc = redis_session_service
    s = await svc.create_session(app_name="app", user_id="u")
    await svc.append_event(s, text_event("x"))
    assert await svc.client.ttl(svc.keys.session("app", "u", s.id).meta) == -1


async def test_corrupted_records(redis_session_service: RedisSessionService) -> None:
    svc = redis_session_service
    bad = await svc.create_session(app_name="app", user_id="u", state={"x": 1})
    good = await svc.create_session(app_name="app", user_id="u", state={"x": 2})
    await svc.append_event(bad, text_event("x"))
    sk = svc.keys.session("app", "u", bad.id)
    await svc.client.lset(sk.log, 0, "1:{truncated")
    with pytest.raises(CorruptedDataError, match=bad.id):
        await svc.get_session(app_name="app", user_id="u", session_id=bad.id)
    await svc.client.lset(sk.log, 0, "9:{}")
    with pytest.raises(CorruptedDataError, match="format"):
        await svc.get_session(app_name="app", user_id="u", session_id=bad.id)
    # a non-JSON state value fails only that value: the session is listed without it
    await svc.client.lset(sk.log, 0, svc.codec.encode_event(text_event("x")))
    await svc.client.hset(sk.meta, "s.x", "{not json")
    got = await svc.get_session(app_name="app", user_id="u", session_id=bad.id)
    assert got is not None and "x" not in got.state
    listed = {s.id: s.state for s in (await svc.list_sessions(app_name="app", user_id="u")).sessions}
    assert listed == {bad.id: {}, good.id: {"x": 2}}
    # a foreign key of the wrong type under the prefix
    await svc.client.delete(svc.keys.user_state("app", "v"))
    await svc.client.set(svc.keys.user_state("app", "v"), "junk")
    with pytest.raises(Exception, match="WRONGTYPE"):
        await svc.get_user_state(app_name="app", user_id="v")
    assert (await svc.get_session(app_name="app", user_id="u", session_id=good.id)) is not None


async def test_append_cost_reads_only_what_it_returns(redis_session_service: RedisSessionService) -> None:
    svc = redis_session_service
    s = await svc.create_session(app_name="app", user_id="u")
    for i in range(50):
        await svc.append_event(s, text_event(f"m{i}"))
    got = await svc.get_session(
        app_name="app", user_id="u", session_id=s.id, config=GetSessionConfig(num_recent_events=3)
    )
    assert got is not None and [e.content.parts[0].text for e in got.events] == ["m47", "m48", "m49"]


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://example:6380/2")
    monkeypatch.setenv("REDIS_KEY_PREFIX", "myapp")
    monkeypatch.setenv("SESSION_TTL_HOURS", "48")
    monkeypatch.setenv("MEMORY_TTL_HOURS", "1")
    s = RedisSettings()
    assert (s.redis_url, s.redis_key_prefix, s.session_ttl_hours, s.memory_ttl_hours) == (
        "redis://example:6380/2",
        "myapp",
        48,
        1,
    )
    assert RedisSettings().history_ttl_hours == 720
    svc = RedisSessionService(client=fakeredis.FakeAsyncRedis(), key_prefix="explicit", session_ttl_hours=2)
    assert svc.settings.redis_key_prefix == "explicit" and svc.settings.session_ttl_hours == 2


@pytest.mark.parametrize(
    ("var", "value"),
    [("REDIS_MAX_CONNECTIONS", "zero"), ("SESSION_TTL_HOURS", "-3"), ("REDIS_KEY_PREFIX", "bad{prefix}")],
)
def test_invalid_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigurationError, match=var):
        RedisSessionService(client=fakeredis.FakeAsyncRedis())


def test_agents_dir_is_accepted() -> None:
    svc = RedisSessionService("redis://localhost:1/0", agents_dir="/tmp/agents")
    assert svc.keys == KeySchema("vana")


def test_unsupported_scheme() -> None:
    with pytest.raises(ValueError, match="scheme"):
        RedisSessionService("http://localhost:6379")


def test_inline_bytes_are_base64_json() -> None:
    from adk_redis._core import codec

    payload = codec.encode_event(rich_event())
    assert payload.startswith("1:{")
    assert "pickle" not in payload and "AAECAwQF" in payload  # bytes travel as base64 inside JSON


async def test_lost_reply_retry_is_applied_once(redis_session_service: RedisSessionService) -> None:
    """redis-py may resend the append script when a reply is lost; it must not store the event twice."""
    svc = redis_session_service
    s = await svc.create_session(app_name="app", user_id="u")
    before = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert before is not None
    event = text_event("once", n=1)
    await svc.append_event(s, event.model_copy(deep=True))
    # `before` is the caller's view had the first reply been lost: same marker, no event.
    await svc.append_event(before, event.model_copy(deep=True))
    assert [e.id for e in before.events] == [event.id]
    assert before.state["n"] == 1
    got = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None and [e.id for e in got.events] == [event.id]
    await svc.append_event(before, text_event("next"))  # and it can continue
    got = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None and len(got.events) == 2


@given(st.text(max_size=40), st.text(max_size=40))
@settings(max_examples=300)
def test_escape_is_injective_and_safe(a: str, b: str) -> None:
    ea, eb = escape(a), escape(b)
    assert unescape(ea) == a
    assert (ea == eb) == (a == b)
    assert not set(ea) & set(":{}*?[]\\ \n\t")
    # joined components can be split back unambiguously
    assert [unescape(x) for x in f"{ea}:{eb}".split(":")] == [a, b]
