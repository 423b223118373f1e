"""``adk-redis export`` / ``import`` is a complete, verifiable backup (real servers only).

Everything under a prefix is written on the shared server: sessions (one
without events), app/user state, memory from sessions and explicit memories
(with vectors), a deleted memory's tombstone, user context, agent memory,
knowledge, session history and design-API sessions with their owners.  It is
exported, imported into an empty throw-away server, and exported again: the
records are the same, the same searches return the same ids in the same order,
the design API finds its sessions for the right users and refuses the others.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.memory.memory_entry import MemoryEntry
from google.genai import types

from adk_redis import RedisMemoryService, RedisSessionService, RedisSettings
from adk_redis.admin.cli import main
from adk_redis.memory.embeddings import HashingEmbedder
from adk_redis.store._api import SessionStoreConfig, create_session_store
from tests.servers import redis_server

APP = "shop"
QUERIES = ["teal colour", "espresso coffee", "shipping policy", "hiking boots", "birthday"]
NO_CLEANUP = SessionStoreConfig(cleanup_interval_minutes=0)


def _event(author: str, text: str, delta: dict[str, Any] | None = None, ts: float | None = None) -> Event:
    kw: dict[str, Any] = {} if ts is None else {"timestamp": ts}
    return Event(
        author=author,
        invocation_id="inv",
        content=types.Content(role="user" if author == "user" else "model", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=delta or {}),
        **kw,
    )


def _drop(url: str, prefix: str) -> None:
    with redis.Redis.from_url(url) as r:
        keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            r.delete(*keys)


@pytest.fixture
def source(redis_url: str, prefix: str) -> Iterator[str]:
    yield redis_url
    _drop(redis_url, prefix)


async def _populate(url: str, prefix: str) -> dict[str, Any]:
    settings = RedisSettings(redis_url=url, redis_key_prefix=prefix)
    sessions = RedisSessionService(url, settings=settings)
    memory = RedisMemoryService(url, settings=settings, embedder=HashingEmbedder())
    try:
        ann = await sessions.create_session(
            app_name=APP, user_id="ann", state={"topic": "colours", "app:v": 1}
        )
        await sessions.append_event(ann, _event("user", "my favourite colour is teal", ts=1_700_000_000.5))
        await sessions.append_event(
            ann, _event("agent", "noted: teal", {"user:colour": "teal", "app:hits": 3, "mood": "good"})
        )
        bob = await sessions.create_session(app_name=APP, user_id="bob")
        await sessions.append_event(bob, _event("user", "I drink espresso coffee every morning"))
        await sessions.append_event(bob, _event("user", "my birthday is in May"))
        empty = await sessions.create_session(app_name=APP, user_id="ann", session_id="no-events")
        await sessions.create_session(app_name="other", user_id="ann", session_id="elsewhere")
        for s in (ann, bob):
            full = await sessions.get_session(app_name=APP, user_id=s.user_id, session_id=s.id)
            assert full is not None
            await memory.add_session_to_memory(full)
        await memory.add_memory(
            app_name=APP,
            user_id="ann",
            memories=[
                MemoryEntry(content=types.Content(parts=[types.Part(text="ann needs hiking boots size 39")])),
                MemoryEntry(content=types.Content(parts=[types.Part(text="ann forgot her birthday cake")])),
            ],
        )
        found = await memory.search_memory(app_name=APP, user_id="ann", query="birthday cake")
        forgotten = found.memories[0].id
        assert forgotten is not None
        await memory.delete_memory(app_name=APP, user_id="ann", memory_id=forgotten)
        cs = memory.cross_session(APP)
        await cs.store_user_context("ann", "preferences", {"theme": "dark", "colour": "teal"})
        await cs.store_agent_memory("planner", "plan", {"steps": ["pack", "hike"]})
        await cs.store_knowledge("policies", "shipping", {"text": "shipping policy: free over 50 EUR"})
        await cs.record_session("ann", ann.id, {"title": "colours"})
        return {"ann": ann.id, "bob": bob.id, "empty": empty.last_update_time, "forgotten": forgotten}
    finally:
        await sessions.close()
        await memory.close()


def _design_api(url: str, prefix: str) -> None:
    store = create_session_store(NO_CLEANUP, settings=RedisSettings(redis_url=url, redis_key_prefix=prefix))
    try:
        store.ensure_session("session_123", user_id=42, title="Research Session")
        store.add_message("session_123", {"role": "user", "content": "Hello, world!"})
        store.ensure_session("session_456", user_id=7)
    finally:
        store.close()


async def _searches(url: str, prefix: str) -> dict[str, list[str | None]]:
    memory = RedisMemoryService(url, key_prefix=prefix, embedder=HashingEmbedder())
    plain = RedisMemoryService(url, key_prefix=prefix)
    try:
        out: dict[str, list[str | None]] = {}
        for user in ("ann", "bob"):
            for q in QUERIES:
                for name, svc in (("hybrid", memory), ("bm25", plain)):
                    found = await svc.search_memory(app_name=APP, user_id=user, query=q)
                    out[f"{name}/{user}/{q}"] = [m.id for m in found.memories]
        cs = memory.cross_session(APP)
        out["context"] = [json.dumps(await cs.get_user_context("ann", "preferences"), sort_keys=True)]
        out["agent"] = [json.dumps(await cs.get_agent_memory("planner", "plan"), sort_keys=True)]
        out["history"] = [h.get("session_id") for h in await cs.get_session_history("ann")]
        return out
    finally:
        await memory.close()
        await plain.close()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _records(path: Path) -> tuple[dict[str, Any], list[str]]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    header = lines[0]
    assert header["type"] == "header" and header["format"] == "adk-redis-export" and header["version"] == 2
    return header, sorted(json.dumps(r, sort_keys=True) for r in lines[1:])


def test_full_round_trip_into_an_empty_server(
    source: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = asyncio.run(_populate(source, prefix))
    _design_api(source, prefix)
    before = asyncio.run(_searches(source, prefix))
    assert before["hybrid/ann/teal colour"] and before["bm25/bob/espresso coffee"]
    assert ids["forgotten"] not in before["bm25/ann/birthday"]

    dump = tmp_path / "backup.jsonl"
    code, out, err = _cli(capsys, "--url", source, "--prefix", prefix, "export", "-o", str(dump))
    assert code == 0, err
    header, records = _records(dump)
    counts = header["counts"]
    assert counts["session"] == 6  # ann x2, bob, other app, two design-API sessions
    assert counts["memory_doc"] >= 6 and counts["memory_tombstone"] == 1 and counts["app_state"] == 1
    kinds = {json.loads(r).get("kind") for r in records}
    assert {"user_context", "agent_memory", "knowledge", "history", "owner", "registry"} <= kinds
    assert all(
        json.loads(r)["vector"]
        for r in records
        if json.loads(r)["type"] == "memory_doc" and json.loads(r)["index"] == "user"
    )
    assert "exported 6 sessions" in out

    with redis_server(args=["--appendonly", "no"]) as target:
        code, out, err = _cli(
            capsys, "--url", target.url, "--prefix", prefix, "--json", "import", "-i", str(dump)
        )
        assert code == 0, out + err
        result = json.loads(out)
        assert result["written"]["session"] == 6 and result["rejected"] == []
        assert sum(result["written"].values()) == sum(counts.values())

        again = tmp_path / "again.jsonl"
        assert _cli(capsys, "--url", target.url, "--prefix", prefix, "export", "-o", str(again))[0] == 0
        header2, records2 = _records(again)
        assert header2["counts"] == counts
        assert records2 == records  # the same records: ids, timestamps, expiries, vectors

        assert asyncio.run(_searches(target.url, prefix)) == before

        async def sessions_kept() -> None:
            svc = RedisSessionService(target.url, key_prefix=prefix)
            try:
                empty = await svc.get_session(app_name=APP, user_id="ann", session_id="no-events")
                assert empty is not None and empty.last_update_time == ids["empty"]
                ann = await svc.get_session(app_name=APP, user_id="ann", session_id=ids["ann"])
                assert ann is not None and ann.state["user:colour"] == "teal" and ann.state["app:hits"] == 3
                assert ann.events[0].timestamp == 1_700_000_000.5
            finally:
                await svc.close()

        asyncio.run(sessions_kept())

        store = create_session_store(
            NO_CLEANUP, settings=RedisSettings(redis_url=target.url, redis_key_prefix=prefix)
        )
        try:
            got = store.get_session("session_123", user_id=42)
            assert got is not None and [m["content"] for m in got["messages"]] == ["Hello, world!"]
            assert store.get_session("session_123", user_id=43) is None  # another user is refused
            assert store.get_session("session_456", user_id=7) is not None
            store.add_message("session_123", {"role": "assistant", "content": "Hi"})
        finally:
            store.close()

        # Idempotent: a second import writes nothing and keeps everything.
        code, out, _ = _cli(
            capsys, "--url", target.url, "--prefix", prefix, "--json", "import", "-i", str(dump)
        )
        result = json.loads(out)
        assert code == 0 and result["written"] == {} and sum(result["kept_existing"].values()) > 0


def test_filters_and_remaining_ttls(
    source: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_populate(source, prefix))
    dump = tmp_path / "ann.jsonl"
    code, _, err = _cli(
        capsys, "--url", source, "--prefix", prefix, "export", "--app", APP, "--user", "ann", "-o", str(dump)
    )
    assert code == 0, err
    _, records = _records(dump)
    parsed = [json.loads(r) for r in records]
    assert {r.get("user_id") for r in parsed if "user_id" in r} == {"ann"}
    assert {r["app_name"] for r in parsed if "app_name" in r} == {APP}
    assert not [r for r in parsed if r.get("kind") in ("knowledge", "agent_memory")]  # app-wide: left out
    ctx = next(r for r in parsed if r.get("kind") == "user_context")
    assert ctx["expires_ms"] is not None

    with redis_server(args=["--appendonly", "no"]) as target:
        assert _cli(capsys, "--url", target.url, "--prefix", prefix, "import", "-i", str(dump))[0] == 0
        r = redis.Redis.from_url(target.url)
        key = f"{prefix}:{ctx['key']}"
        remaining = r.pttl(key)
        with redis.Redis.from_url(source) as src:
            assert abs(remaining - src.pttl(key)) < 60_000  # the remaining TTL, not a fresh one
        assert r.exists(f"{prefix}:session:{{{APP}:ann}}:s:no-events")
        assert not r.keys(f"{prefix}:session:{{{APP}:bob}}*")
        r.close()


def test_import_rejects_with_line_numbers_and_never_tracebacks(
    source: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_populate(source, prefix))
    dump = tmp_path / "b.jsonl"
    assert _cli(capsys, "--url", source, "--prefix", prefix, "export", "-o", str(dump))[0] == 0
    lines = dump.read_text().splitlines()
    lines[2] = lines[2][:-10]  # a truncated record
    lines.insert(
        3,
        json.dumps(
            {
                "type": "key",
                "kind": "user_context",
                "key": "session:{x:y}:index",
                "redis_type": "string",
                "value": "1",
            }
        ),
    )  # not a context key
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines) + "\n")
    code, out, err = _cli(
        capsys, "--url", source, "--prefix", prefix + "-copy", "--json", "import", "-i", str(broken)
    )
    _drop(source, prefix + "-copy")
    result = json.loads(out)
    assert code == 1 and "Traceback" not in err
    assert [r["line"] for r in result["rejected"]] == [3, 4]
    assert "not JSON" in result["rejected"][0]["reason"]
    assert "not a 'user_context' key" in result["rejected"][1]["reason"]


def test_vector_sets_round_trip_on_redis8(
    redis8_url: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On Redis 8 the vectors live in vector sets: exported with VEMB, re-added with VADD, same results."""
    asyncio.run(_populate(redis8_url, prefix))
    copy = prefix + "c"
    try:
        before = asyncio.run(_searches(redis8_url, prefix))
        dump = tmp_path / "v.jsonl"
        assert _cli(capsys, "--url", redis8_url, "--prefix", prefix, "export", "-o", str(dump))[0] == 0
        _, records = _records(dump)
        docs = [json.loads(r) for r in records if json.loads(r)["type"] == "memory_doc"]
        assert docs and all(d["vector"] for d in docs if d["index"] == "user")
        code, out, err = _cli(capsys, "--url", redis8_url, "--prefix", copy, "import", "-i", str(dump))
        assert code == 0, out + err
        with redis.Redis.from_url(redis8_url) as r:
            assert r.execute_command("VCARD", f"{copy}:memory:index:user:{{{APP}:ann}}:vset") > 0
        assert asyncio.run(_searches(redis8_url, copy)) == before  # same ids, same order
    finally:
        _drop(redis8_url, prefix)
        _drop(redis8_url, copy)


def test_round_trip_on_redis62(
    redis62_url: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The oldest server we support (no PEXPIRETIME: expiries from PTTL): same searches after a restore."""
    ids = asyncio.run(_populate(redis62_url, prefix))
    copy = prefix + "c"
    try:
        before = asyncio.run(_searches(redis62_url, prefix))
        dump = tmp_path / "old.jsonl"
        assert _cli(capsys, "--url", redis62_url, "--prefix", prefix, "export", "-o", str(dump))[0] == 0
        header, _ = _records(dump)
        code, out, err = _cli(
            capsys, "--url", redis62_url, "--prefix", copy, "--json", "import", "-i", str(dump)
        )
        assert code == 0, out + err
        assert sum(json.loads(out)["written"].values()) == sum(header["counts"].values())
        assert asyncio.run(_searches(redis62_url, copy)) == before
        again = tmp_path / "again.jsonl"
        assert _cli(capsys, "--url", redis62_url, "--prefix", copy, "export", "-o", str(again))[0] == 0
        assert _records(again)[0]["counts"] == header["counts"]
        assert ids["forgotten"] not in before["bm25/ann/birthday"]
    finally:
        _drop(redis62_url, prefix)
        _drop(redis62_url, copy)


def test_check_verifies_a_backup_without_writing(
    source: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_populate(source, prefix))
    dump = tmp_path / "b.jsonl"
    assert _cli(capsys, "--url", source, "--prefix", prefix, "export", "-o", str(dump))[0] == 0
    header, records = _records(dump)
    target = prefix + "-check"
    code, out, _ = _cli(
        capsys, "--url", source, "--prefix", target, "--json", "import", "--check", "-i", str(dump)
    )
    result = json.loads(out)
    assert code == 0 and result["checked"] == {k: v for k, v in header["counts"].items() if v}
    assert result["written"] == {} and result["rejected"] == []
    with redis.Redis.from_url(source) as r:
        assert not list(r.scan_iter(match=f"{target}:*"))  # nothing written
    truncated = tmp_path / "t.jsonl"
    truncated.write_text("\n".join(dump.read_text().splitlines()[:-3]) + "\n")
    code, out, _ = _cli(
        capsys, "--url", source, "--prefix", target, "import", "--check", "-i", str(truncated)
    )
    assert code == 1 and "the file has problems" in out and "truncated?" in out


def test_equal_scores_keep_their_order_after_a_round_trip(
    source: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ties rank in insertion order (a sequence number per document): the backup carries the numbers,
    so equal scores come back in the same order (not the export's id order), and a document added
    after the import ranks after them."""

    def walk(mid: str) -> MemoryEntry:
        return MemoryEntry(id=mid, content=types.Content(parts=[types.Part(text="walk the dog")]))

    async def add(key_prefix: str, *mids: str) -> None:
        async with RedisMemoryService(source, key_prefix=key_prefix) as memory:
            for mid in mids:  # one call each: one sequence number each, in this order
                await memory.add_memory(app_name=APP, user_id="ann", memories=[walk(mid)])
            if "gone" in mids:  # the counter runs ahead of the number of documents
                await memory.delete_memory(app_name=APP, user_id="ann", memory_id="gone")

    async def order(key_prefix: str) -> list[str | None]:
        async with RedisMemoryService(source, key_prefix=key_prefix) as memory:
            found = await memory.search_memory(app_name=APP, user_id="ann", query="dog")
            return [m.id for m in found.memories]

    copy = prefix + "c"
    try:
        asyncio.run(add(prefix, "gone", "zeta", "alpha", "mid"))  # ids sort the other way round
        before = asyncio.run(order(prefix))
        assert before == ["zeta", "alpha", "mid"]
        dump = tmp_path / "ties.jsonl"
        assert _cli(capsys, "--url", source, "--prefix", prefix, "export", "-o", str(dump))[0] == 0
        code, out, err = _cli(capsys, "--url", source, "--prefix", copy, "import", "-i", str(dump))
        assert code == 0, out + err
        assert asyncio.run(order(copy)) == before
        again = tmp_path / "again.jsonl"  # the same records, sequence numbers included
        assert _cli(capsys, "--url", source, "--prefix", copy, "export", "-o", str(again))[0] == 0
        assert _records(again)[1] == _records(dump)[1]
        asyncio.run(add(copy, "late"))  # "late" sorts before "mid": only its number puts it last
        assert asyncio.run(order(copy)) == before + ["late"]
    finally:
        _drop(source, copy)
