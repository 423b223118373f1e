"""adk-redis cleanup and bench, on fakeredis and on the real server (unique prefix)."""

from __future__ import annotations

import subprocess
import sys
import time

from google.adk.memory.memory_entry import MemoryEntry
from google.genai import types

from adk_redis import RedisSessionService
from adk_redis.memory._service import RedisMemoryService
from tests.cli_fixtures import Cli
from tests.helpers import chat_event as _event


async def _seed_dangling(svc: RedisSessionService) -> dict[str, str]:
    """Two live sessions, two whose keys vanished (as after a TTL expiry), expired memory."""
    ids: dict[str, str] = {}
    for name, user in (("keep1", "ann"), ("gone1", "ann"), ("keep2", "bob"), ("gone2", "bob")):
        s = await svc.create_session(app_name="app", user_id=user, session_id=f"{name} x")
        await svc.append_event(s, _event("user", f"hello {name}"))
        ids[name] = s.id
    for name, user in (("gone1", "ann"), ("gone2", "bob")):
        sk = svc.keys.session("app", user, ids[name])
        await svc.client.delete(*sk.all)  # what an expiry leaves behind

    mem = RedisMemoryService(client=svc.client, settings=svc.settings)
    # The long-lived memory first: the index keys then carry its TTL, and the short-lived document
    # expires by its score alone (added first, its 3.6 ms key TTL could drop the whole index).
    keep = MemoryEntry(content=types.Content(parts=[types.Part(text="green tea")]), id="m2")
    await mem.add_memory(app_name="app", user_id="ann", memories=[keep])
    entry = MemoryEntry(content=types.Content(parts=[types.Part(text="tea with lemon")]), id="m1")
    await mem.add_memory(app_name="app", user_id="ann", memories=[entry], custom_metadata={"ttl_hours": 1e-6})
    hist = mem.cross_session("app")
    await hist.record_session("ann", "old")
    hk = svc.keys.history("app", "ann")
    await hist.record_session("ann", "new")
    await svc.client.zadd(hk.expiry, {"old": 1})  # expired long ago (writes prune expired entries)
    time.sleep(0.02)
    return ids


async def _indexes(svc: RedisSessionService) -> tuple[list[str], list[str], list[str]]:
    ann = await svc.client.zrange(svc.keys.user_index("app", "ann"), 0, -1)
    app = await svc.client.zrange(svc.keys.app_index("app"), 0, -1)
    hist = await svc.client.hkeys(svc.keys.history("app", "ann").data)
    return sorted(m.decode() for m in ann), sorted(m.decode() for m in app), sorted(h.decode() for h in hist)


def test_cleanup_removes_dangling_entries_and_expired_memory(cli: Cli) -> None:
    cli.run(_seed_dangling)
    code, data = cli.json("cleanup", "--dry-run")
    assert code == 0 and data["dry_run"] is True
    assert data["user_index_entries"] == 2 and data["app_index_entries"] == 2
    assert data["memory_entries"] == 1 and data["history_entries"] == 1
    ann, app, hist = cli.run(_indexes)
    assert len(ann) == 2 and len(app) == 4 and hist == ["new", "old"]  # dry run changed nothing

    code, out, _ = cli("cleanup", "-v")
    assert code == 0 and "removed 2 user-index and 2 app-index entries" in out
    assert "removed 1 expired memory entry and 1 expired session-history entry" in out
    ann, app, hist = cli.run(_indexes)
    assert ann == ["keep1%20x"] and app == ["ann:keep1%20x", "bob:keep2%20x"] and hist == ["new"]

    async def survivors(svc: RedisSessionService) -> None:
        listed = await svc.list_sessions(app_name="app")
        assert sorted(s.id for s in listed.sessions) == ["keep1 x", "keep2 x"]
        mem = RedisMemoryService(client=svc.client, settings=svc.settings)
        found = await mem.search_memory(app_name="app", user_id="ann", query="tea")
        assert [m.id for m in found.memories] == ["m2"]

    cli.run(survivors)
    code, data = cli.json("cleanup")
    assert code == 0 and data["user_index_entries"] == data["app_index_entries"] == 0
    assert data["memory_entries"] == data["history_entries"] == 0


def test_cleanup_help_says_scan_is_admin_only() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "adk_redis.admin.cli", "cleanup", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    help_text = " ".join(proc.stdout.split())
    assert proc.returncode == 0 and "SCAN" in help_text and "never used on a request path" in help_text


def test_bench_reports_p50_against_round_trip(cli: Cli) -> None:
    code, data = cli.json("bench", "-n", "30")
    assert code == 0
    for key in ("round_trip", "append_event", "get_session_recent10"):
        assert data[key]["n"] == 30 and 0 < data[key]["p50_us"] <= data[key]["p99_us"]
    assert data["append_vs_round_trip"] > 0 and data["events_in_session"] == 130
    code, out, _ = cli("bench", "--iterations", "5")
    assert code == 0 and "append_event p50 =" in out and "bare round trip" in out

    async def nothing_left(svc: RedisSessionService) -> list[bytes]:
        return [k async for k in svc.client.scan_iter(match=f"{cli.prefix}:*")]

    assert cli.run(nothing_left) == []
