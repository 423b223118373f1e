"""End to end: ``adk api_server`` / ``adk web`` over samples/ with redis:// session and memory URIs.

The server (a subprocess on a free loopback port) loads ``samples/services.py``,
which registers adk_redis; a session is created and a turn run over HTTP; the
server is restarted and the session, its events and its state are still there,
and the memory agent recalls what was said before the restart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from tests.servers import free_port

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
ADK = Path(sys.executable).parent / "adk"


def _http(method: str, url: str, body: Any = None, timeout: float = 30) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


@contextmanager
def adk_server(command: str, redis_url: str, prefix: str, log: Path) -> Iterator[str]:
    """Run ``adk <command>`` (api_server or web) over samples/ with our services; yield its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("GOOGLE_API_KEY", "REDIS_URL")}
    env.update({"ADK_REDIS_LOCAL_MODEL": "1", "REDIS_KEY_PREFIX": prefix, "PYTHONUNBUFFERED": "1"})
    cmd = [
        str(ADK),
        command,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-reload",
        "--session_service_uri",
        redis_url,
        "--memory_service_uri",
        redis_url,
        "--artifact_service_uri",
        "memory://",
        str(SAMPLES),
    ]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 25
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"adk {command} exited:\n{log.read_text()[-3000:]}")
            try:
                assert _http("GET", f"{base}/list-apps", timeout=2) == ["hello_agent", "memory_agent"]
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    tail = log.read_text()[-3000:]
                    raise AssertionError(f"adk {command} did not start:\n{tail}") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _run(base: str, app: str, user: str, session_id: str, text: str) -> list[dict[str, Any]]:
    body = {
        "appName": app,
        "userId": user,
        "sessionId": session_id,
        "newMessage": {"role": "user", "parts": [{"text": text}]},
    }
    events: list[dict[str, Any]] = _http("POST", f"{base}/run", body)
    return events


def _texts(events: list[dict[str, Any]]) -> list[str]:
    return [p["text"] for e in events for p in (e.get("content") or {}).get("parts", []) if "text" in p]


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
