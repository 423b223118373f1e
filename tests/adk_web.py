"""Helpers of the ``adk web`` / ``adk api_server`` end-to-end tests (test_adk_web.py, test_browser.py):
start the server over samples/ on a free port, call its HTTP API."""

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
                apps = ["hello_agent", "memory_agent", "memory_bank_agent"]
                assert _http("GET", f"{base}/list-apps", timeout=2) == apps
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
