"""The sample agents and the quickstart, run through ADK's Runner on our services.

Each behaviour runs on fakeredis and on the real server (unique key prefix).
The samples use their deterministic local model (no network, no API key).
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from google.adk.cli.service_registry import get_service_registry
from google.adk.events.event import Event
from google.adk.memory.in_memory_memory_service import InMemoryMemoryService
from google.adk.runners import Runner
from google.genai import types

from adk_redis import RedisSessionService
from adk_redis.registry import memory_factory, session_factory

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
os.environ["ADK_REDIS_LOCAL_MODEL"] = "1"  # the samples pick their offline model at import
if str(SAMPLES) not in sys.path:
    sys.path.insert(0, str(SAMPLES))

import _local_model  # noqa: E402
import hello_agent.agent as hello  # noqa: E402
import memory_agent.agent as memory  # noqa: E402


async def _drop(client: Any, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)


class Backend:
    """A session service plus a memory service on one store, and a way to reopen them."""

    def __init__(self, kind: str, prefix: str, redis_url: str) -> None:
        self.kind, self.prefix, self.url = kind, prefix, redis_url
        self.fake = fakeredis.FakeAsyncRedis() if kind == "fakeredis" else None
        self.opened: list[Any] = []

    def sessions(self) -> RedisSessionService:
        if self.fake is not None:
            svc = RedisSessionService(client=self.fake, key_prefix=self.prefix)
        else:
            svc = RedisSessionService(self.url, key_prefix=self.prefix)
        self.opened.append(svc)
        return svc

    def memory(self) -> Any:
        from adk_redis.memory._service import RedisMemoryService

        if self.fake is not None:
            svc = RedisMemoryService(client=self.fake, key_prefix=self.prefix)
        else:
            svc = RedisMemoryService(self.url, key_prefix=self.prefix)
        self.opened.append(svc)
        return svc

    async def close(self) -> None:
        if self.fake is None and self.opened:
            await _drop(self.opened[0].client, self.prefix)
        for svc in self.opened:
            close = getattr(svc, "close", None)
            if close is not None:
                await close()


@pytest.fixture(params=["fakeredis", "redis"])
async def backend(request: pytest.FixtureRequest, prefix: str, redis_url: str) -> AsyncIterator[Backend]:
    b = Backend(request.param, prefix, redis_url)
    yield b
    await b.close()


async def turn(runner: Runner, user: str, session_id: str, text: str) -> list[Event]:
    message = types.Content(role="user", parts=[types.Part.from_text(text=text)])
    return [e async for e in runner.run_async(user_id=user, session_id=session_id, new_message=message)]


def final_text(events: list[Event]) -> str:
    texts = [p.text for e in events if e.content for p in e.content.parts or [] if p.text]
    return texts[-1] if texts else ""


def calls(events: list[Event]) -> list[str]:
    return [c.name or "" for e in events for c in e.get_function_calls()]


# -- the local model ---------------------------------------------------------------
def test_choose_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    monkeypatch.setenv("ADK_REDIS_LOCAL_MODEL", "0")
    assert _local_model.choose_model([]) == _local_model.GEMINI_DEFAULT
    monkeypatch.setenv("ADK_SAMPLE_MODEL", "gemini-x")
    assert _local_model.choose_model([]) == "gemini-x"
    monkeypatch.setenv("ADK_REDIS_LOCAL_MODEL", "1")
    assert isinstance(_local_model.choose_model([]), _local_model.LocalModel)
    monkeypatch.delenv("GOOGLE_API_KEY")
    monkeypatch.delenv("ADK_REDIS_LOCAL_MODEL")
    assert isinstance(_local_model.choose_model([]), _local_model.LocalModel)
    assert isinstance(hello.root_agent.model, _local_model.LocalModel)
    assert isinstance(memory.root_agent.model, _local_model.LocalModel)
    from adk_redis.testing import ScriptedModel

    assert _local_model.LocalModel is ScriptedModel  # the samples use the package's public model
    source = (SAMPLES / "_local_model.py").read_text()
    assert "google.adk.models._" not in source and "._" not in source.split("import", 1)[1]


# -- hello_agent -------------------------------------------------------------------
async def test_hello_agent_tool_call_and_state_persist(backend: Backend) -> None:
    sessions = backend.sessions()
    runner = Runner(app_name="hello_agent", agent=hello.root_agent, session_service=sessions)
    s1 = await sessions.create_session(app_name="hello_agent", user_id="ann")
    events = await turn(runner, "ann", s1.id, "hello there")
    assert calls(events) == ["record_visit"]
    assert final_text(events) == "Hello! This is your visit number 1 (1 for everyone)."
    s2 = await sessions.create_session(app_name="hello_agent", user_id="ann")
    again = final_text(await turn(runner, "ann", s2.id, "hey again"))
    assert again.startswith("Hello! This is your visit number 2")
    s3 = await sessions.create_session(app_name="hello_agent", user_id="bob")
    assert final_text(await turn(runner, "bob", s3.id, "hello")) == (
        "Hello! This is your visit number 1 (3 for everyone)."
    )
    # Not a greeting: no tool call, no state change.
    quiet = await turn(runner, "bob", s3.id, "what time is it")
    assert calls(quiet) == [] and final_text(quiet) == "Noted: what time is it"

    reopened = backend.sessions()  # a fresh service instance (another process, in real life)
    got = await reopened.get_session(app_name="hello_agent", user_id="ann", session_id=s1.id)
    assert got is not None
    assert [e.author for e in got.events] == ["user", "hello_agent", "hello_agent", "hello_agent"]
    assert got.events[1].get_function_calls()[0].args == {"note": "hello there"}
    assert got.state["user:visits"] == 2 and got.state["app:total_visits"] == 3
    assert got.state["last_note"] == "hello there"
    bob = await reopened.get_session(app_name="hello_agent", user_id="bob", session_id=s3.id)
    assert bob is not None and len(bob.events) == 6 and bob.state["user:visits"] == 1
    assert len((await reopened.list_sessions(app_name="hello_agent")).sessions) == 3


# -- memory_agent ------------------------------------------------------------------
Turns = tuple[list[Event], list[Event], list[Event]]


async def _memory_conversation(sessions: Any, memory_service: Any) -> Turns:
    runner = Runner(
        app_name="memory_agent",
        agent=memory.root_agent,
        session_service=sessions,
        memory_service=memory_service,
    )
    first = await sessions.create_session(app_name="memory_agent", user_id="ann")
    told = await turn(runner, "ann", first.id, "My favourite colour is teal and I like window seats.")
    second = await sessions.create_session(app_name="memory_agent", user_id="ann")
    recalled = await turn(runner, "ann", second.id, "What do you remember about my favourite colour?")
    stranger = await sessions.create_session(app_name="memory_agent", user_id="bob")
    other = await turn(runner, "bob", stranger.id, "What do you remember about my favourite colour?")
    return told, recalled, other


def _check_memory_conversation(told: list[Event], recalled: list[Event], other: list[Event]) -> None:
    assert calls(told) == []
    assert final_text(told).startswith("Thanks, I will remember that")
    assert calls(recalled) == ["load_memory"]
    responses = [r for e in recalled for r in e.get_function_responses()]
    assert responses and responses[0].name == "load_memory"
    assert "teal" in final_text(recalled) and "window seats" in final_text(recalled)
    assert calls(other) == ["load_memory"]
    assert final_text(other) == "I don't remember anything about that yet."


async def test_memory_agent_reference_in_memory() -> None:
    """The sample's logic against ADK's own in-memory services (the reference behaviour)."""
    from google.adk.sessions.in_memory_session_service import InMemorySessionService

    _check_memory_conversation(*await _memory_conversation(InMemorySessionService(), InMemoryMemoryService()))


async def test_memory_agent_recalls_across_sessions(backend: Backend) -> None:
    sessions = backend.sessions()
    told, recalled, other = await _memory_conversation(sessions, backend.memory())
    _check_memory_conversation(told, recalled, other)
    # Memory survives a new process: a fresh memory service finds it.
    fresh = backend.memory()
    found = await fresh.search_memory(app_name="memory_agent", user_id="ann", query="favourite colour")
    assert any("teal" in (p.text or "") for m in found.memories for p in (m.content.parts or []))


# -- services.py / registry ------------------------------------------------------------
def test_samples_services_module_registers_our_factories() -> None:
    runpy.run_path(str(SAMPLES / "services.py"))
    registry = get_service_registry()
    for scheme in ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel"):
        assert registry._session_factories[scheme] is session_factory
        assert registry._memory_factories[scheme] is memory_factory


# -- quickstart ----------------------------------------------------------------------
def _quickstart(env: dict[str, str], cwd: Path) -> tuple[str, int]:
    drop = ("REDIS_URL", "GOOGLE_API_KEY", "REDIS_KEY_PREFIX", "ADK_REDIS_DATA_DIR")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    proc = subprocess.run(
        [sys.executable, str(SAMPLES / "quickstart.py")],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = re.search(r"sessions so far: (\d+)", proc.stdout)
    assert found, proc.stdout
    assert re.search(r"events in session: 4", proc.stdout), proc.stdout
    return proc.stdout, int(found.group(1))


async def test_quickstart_with_redis_url(redis_url: str, prefix: str, tmp_path: Path) -> None:
    env = {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix}
    try:
        out, n = _quickstart(env, tmp_path)
        assert "Using the Redis server from REDIS_URL" in out and n == 1
        out, n = _quickstart(env, tmp_path)
        assert n == 2 and "user:visits = 2" in out
    finally:
        svc = RedisSessionService(redis_url, key_prefix=prefix)
        await _drop(svc.client, prefix)
        await svc.close()


async def test_quickstart_with_key_prefix_in_redis_url(redis_url: str, prefix: str, tmp_path: Path) -> None:
    """REDIS_URL=...?key_prefix=P works in the library as in the CLI (no traceback): data under P."""
    sep = "&" if "?" in redis_url else "?"
    try:
        out, n = _quickstart({"REDIS_URL": f"{redis_url}{sep}key_prefix={prefix}"}, tmp_path)
        assert n == 1
        svc = RedisSessionService(redis_url, key_prefix=prefix)
        listed = await svc.list_sessions(app_name="hello_agent", user_id="quickstart-user")
        assert len(listed.sessions) == 1
        await svc.close()
    finally:
        svc = RedisSessionService(redis_url, key_prefix=prefix)
        await _drop(svc.client, prefix)
        await svc.close()


@pytest.mark.parametrize(
    ("sample", "env", "fragment"),
    [
        ("quickstart.py", {"REDIS_URL": "redis:/127.0.0.1:6379/0"}, "must be followed by '//'"),
        ("quickstart.py", {"REDIS_URL": "redis://127.0.0.1:6379/0?bogus=1"}, "bogus"),
        ("research_workflow.py", {"REDIS_URL": "redis:/127.0.0.1:6379/0"}, "must be followed by '//'"),
    ],
)
def test_samples_report_a_configuration_error_in_one_line(
    sample: str, env: dict[str, str], fragment: str, tmp_path: Path
) -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "GOOGLE_API_KEY")}
    proc = subprocess.run(
        [sys.executable, str(SAMPLES / sample)],
        env={**base, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "configuration error" in lines[0] and fragment in lines[0], proc.stderr


def test_quickstart_embedded_server_persists_between_runs(tmp_path: Path) -> None:
    out, n = _quickstart({}, tmp_path)
    assert "started an embedded Valkey server" in out and n == 1
    assert (tmp_path / ".adk_redis_data").is_dir()
    out, n = _quickstart({}, tmp_path)
    assert n == 2 and "user:visits = 2" in out


def test_quickstart_falls_back_to_memory_and_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    out, n = _quickstart({"ADK_REDIS_DATA_DIR": str(blocker)}, tmp_path)
    assert "embedded server could not start" in out
    assert "Falling back to ADK's InMemorySessionService" in out and n == 1
