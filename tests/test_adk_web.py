"""End to end: ``adk api_server`` / ``adk web`` over samples/ with redis:// session and memory URIs.

The server (a subprocess on a free loopback port) loads ``samples/services.py``,
which registers adk_redis; a session is created and a turn run over HTTP; the
server is restarted and the session, its events and its state are still there,
and the memory agent recalls what was said before the restart.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import redis

from tests.adk_web import _http, _run, _texts, adk_server


def test_adk_server_sessions_and_memory_survive_restart(redis_url: str, prefix: str, tmp_path: Path) -> None:
    log = tmp_path / "adk.log"
    try:
        with adk_server("api_server", redis_url, prefix, log) as base:
            sessions = f"{base}/apps/hello_agent/users/ann/sessions"
            created = _http("POST", sessions, {"state": {"mood": "sunny"}})
            sid = created["id"]
            events = _run(base, "hello_agent", "ann", sid, "hello from the web")
            assert _texts(events)[-1] == "Hello! This is your visit number 1 (1 for everyone)."
            mem = _http("POST", f"{base}/apps/memory_agent/users/ann/sessions", {})
            statement = "My favourite colour is teal. I like window seats."
            told = _run(base, "memory_agent", "ann", mem["id"], statement)
            assert _texts(told)[-1].startswith("Thanks, I will remember that")

        # The data is in Redis under our prefix, nowhere else.
        with redis.Redis.from_url(redis_url) as r:
            assert any(k.startswith(f"{prefix}:".encode()) for k in r.scan_iter(match=f"{prefix}:*"))

        # Restart as ``adk web`` (the dev UI server): same store, same data.
        with adk_server("web", redis_url, prefix, log) as base:
            with urllib.request.urlopen(f"{base}/dev-ui/", timeout=10) as page:
                assert page.status == 200 and b"<html" in page.read().lower()
            sessions = f"{base}/apps/hello_agent/users/ann/sessions"
            got = _http("GET", f"{sessions}/{sid}")
            assert got["id"] == sid
            authors = [e["author"] for e in got["events"]]
            assert authors == ["user", "hello_agent", "hello_agent", "hello_agent"]
            assert got["events"][0]["content"]["parts"][0]["text"] == "hello from the web"
            assert got["state"]["mood"] == "sunny"
            assert got["state"]["user:visits"] == 1 and got["state"]["app:total_visits"] == 1
            assert got["state"]["last_note"] == "hello from the web"
            listed = _http("GET", sessions)
            assert [s["id"] for s in listed] == [sid]
            # A second turn continues the same persisted session.
            again = _run(base, "hello_agent", "ann", sid, "hello again")
            assert _texts(again)[-1] == "Hello! This is your visit number 2 (2 for everyone)."
            assert len(_http("GET", f"{sessions}/{sid}")["events"]) == 8
            # Cross-session memory, across the restart.
            new = _http("POST", f"{base}/apps/memory_agent/users/ann/sessions", {})
            question = "What do you remember about my favourite colour?"
            recalled = _run(base, "memory_agent", "ann", new["id"], question)
            assert "teal" in _texts(recalled)[-1]
    finally:
        with redis.Redis.from_url(redis_url) as r:
            keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                r.delete(*keys)
