"""Every failure typed: operation x fault against real throw-away servers (and loopback fakes for reply
classes real servers give only rarely).

Faults: a killed server (refused), a connection closed or reset after the command was sent (a cutting
proxy in front of a real server), a stall (``DEBUG SLEEP``) with short timeouts, with and without an
operation deadline, ``LOADING`` / ``TRYAGAIN`` / ``BUSY`` (a fake RESP server), ``READONLY`` (a real
replica), ``MASTERDOWN`` (a real replica of a dead primary, ``replica-serve-stale-data no``),
``CLUSTERDOWN`` (a real cluster node serving no slot).

Every public operation must raise :class:`adk_redis.RedisUnavailableError` (a built-in and a redis-py
``ConnectionError``), with the fault's ``kind``, one line, and :class:`adk_redis.RedisOutcomeUnknownError`
exactly when a write was sent and its reply lost.  Servers are shared across cases; the operations of
one fault run concurrently (one stall serves them all).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.exceptions
from google.adk.sessions.session import Session
from google.genai import types

from adk_redis import (
    CrossSessionMemory,
    RedisMemoryService,
    RedisOutcomeUnknownError,
    RedisSessionService,
    RedisUnavailableError,
    create_session_store,
    load_settings,
)
from adk_redis.admin.cli import main as cli_main
from adk_redis.keys import KeySchema
from adk_redis.registry import memory_factory, session_factory

from .fake_net import CuttingProxy, ErrorServer
from .helpers import text_event as said
from .servers import RedisServer, free_port

APP = "app"
FAST = {"redis_connect_timeout": 0.3, "redis_retry_attempts": 1, "redis_operation_timeout": 0.6}
ADK = Path(sys.executable).parent / "adk-redis"


def local_session(sid: str = "s1") -> Session:
    """A session object as a caller holds it (appends / memory ingestion need one)."""
    session = Session(id=sid, app_name=APP, user_id="u", state={}, events=[said("hello there")])
    session._storage_update_marker = "0"
    return session


# -- the operations ------------------------------------------------------------------------------
@dataclass
class Ctx:
    url: str
    prefix: str
    settings: Any
    sessions: RedisSessionService
    memory: RedisMemoryService
    cross: CrossSessionMemory
    reg_sessions: Any
    reg_memory: Any
    session: Session


async def make_ctx(url: str, prefix: str, **kw: Any) -> Ctx:
    settings = load_settings(redis_url=url, redis_key_prefix=prefix, **{**FAST, **kw})
    from adk_redis._core.connection import create_client

    return Ctx(
        url=url,
        prefix=prefix,
        settings=settings,
        sessions=RedisSessionService(settings=settings),
        memory=RedisMemoryService(settings=settings),
        cross=CrossSessionMemory(create_client(settings), KeySchema(prefix), settings, app_name=APP),
        reg_sessions=None,
        reg_memory=None,
        session=local_session(),
    )


def design_api(ctx: Ctx, step: str) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        settings = ctx.settings.model_copy(update={"redis_fallback_to_memory": False})

        def sync() -> Any:
            store = create_session_store(settings=settings)  # may raise already (its start-up PING)
            try:
                if step == "ensure":
                    return store.ensure_session("d1", user_id="u")
                return store.add_message("d1", {"role": "user", "content": "hi"})
            finally:
                store.close()

        return await asyncio.to_thread(sync)

    return run


OPS: dict[str, Callable[[Ctx], Callable[[], Awaitable[Any]]]] = {
    "create_session": lambda c: lambda: c.sessions.create_session(app_name=APP, user_id="u", session_id="n1"),
    "get_session": lambda c: lambda: c.sessions.get_session(app_name=APP, user_id="u", session_id="s1"),
    "list_sessions": lambda c: lambda: c.sessions.list_sessions(app_name=APP, user_id="u"),
    "list_sessions_page": lambda c: lambda: c.sessions.list_sessions_page(app_name=APP, order="updated"),
    "append_event": lambda c: lambda: c.sessions.append_event(c.session, said("more")),
    "delete_session": lambda c: lambda: c.sessions.delete_session(app_name=APP, user_id="u", session_id="s1"),
    "add_session_to_memory": lambda c: lambda: c.memory.add_session_to_memory(c.session),
    "search_memory": lambda c: lambda: c.memory.search_memory(app_name=APP, user_id="u", query="hello"),
    "cross_store": lambda c: lambda: c.cross.store_user_context("u", "prefs", {"tone": "brief"}),
    "cross_get": lambda c: lambda: c.cross.get_user_context("u", "prefs"),
    "design_ensure_session": lambda c: design_api(c, "ensure"),
    "design_add_message": lambda c: design_api(c, "add"),
    "registry_create_session": lambda c: lambda: c.reg_sessions.create_session(app_name=APP, user_id="u"),
    "registry_search_memory": lambda c: (
        lambda: c.reg_memory.search_memory(app_name=APP, user_id="u", query="hello")
    ),
}

#: Operations whose first command writes: a lost reply makes their outcome unknown.
WRITES = {"create_session", "append_event", "delete_session", "cross_store", "registry_create_session"}
READS = set(OPS) - WRITES - {"add_session_to_memory", "design_ensure_session", "design_add_message"}


async def run_all(ctx: Ctx, names: list[str]) -> dict[str, BaseException | None]:
    calls = [OPS[n](ctx) for n in names]

    async def one(fn: Callable[[], Awaitable[Any]]) -> BaseException | None:
        try:
            await fn()
        except BaseException as exc:  # noqa: BLE001 - the subject of the test
            return exc
        return None

    results = await asyncio.gather(*(one(fn) for fn in calls))
    return dict(zip(names, results))


def check(results: dict[str, BaseException | None], kind: str | set[str], *, unknown: set[str]) -> None:
    """Every result is a typed, one-line RedisUnavailableError of ``kind``; unknown outcome exactly for
    the operations in ``unknown`` (the writes sent before the fault), never for reads."""
    kinds = {kind} if isinstance(kind, str) else kind
    problems = []
    for name, exc in results.items():
        if not isinstance(exc, RedisUnavailableError):
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        assert isinstance(exc, ConnectionError) and isinstance(exc, redis.exceptions.ConnectionError)
        assert "\n" not in str(exc), f"{name}: not one line: {exc!r}"
        if exc.kind not in kinds:
            problems.append(f"{name}: kind {exc.kind!r} not in {kinds}: {exc}")
        if isinstance(exc, RedisOutcomeUnknownError) != (name in unknown):
            problems.append(f"{name}: outcome unknown={isinstance(exc, RedisOutcomeUnknownError)}: {exc}")
    assert not problems, "\n".join(problems)


def attach_registry(ctx: Ctx, url: str) -> None:
    ctx.reg_sessions = session_factory(f"{url}?key_prefix={ctx.prefix}")
    ctx.reg_memory = memory_factory(f"{url}?key_prefix={ctx.prefix}")


# -- servers (shared by the module) ----------------------------------------------------------------
@pytest.fixture(scope="module")
def live() -> Iterator[RedisServer]:
    srv = RedisServer(args=["--enable-debug-command", "yes"]).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module", autouse=True)
def _fast_env() -> Iterator[None]:
    """The registry's services and the CLI read the environment: short timeouts there too."""
    old = {
        k: os.environ.get(k)
        for k in ("REDIS_OPERATION_TIMEOUT", "REDIS_CONNECT_TIMEOUT", "REDIS_RETRY_ATTEMPTS")
    }
    os.environ.update(
        {"REDIS_OPERATION_TIMEOUT": "0.6", "REDIS_CONNECT_TIMEOUT": "0.3", "REDIS_RETRY_ATTEMPTS": "1"}
    )
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def prefix() -> str:
    return "t" + uuid.uuid4().hex[:10]


def cli_stats(url: str, prefix_: str) -> tuple[int, str]:
    """``adk-redis stats`` in-process (its own event loop): exit code and stderr."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(["--url", url, "--prefix", prefix_, "stats"])
    return code, err.getvalue()


async def check_cli(url: str, kind_words: tuple[str, ...]) -> None:
    code, err = await asyncio.to_thread(cli_stats, url, prefix())
    assert code == 3, err  # EXIT_CONNECTION (adk_redis/admin/common.py)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and " Redis at " in lines[0], err
    assert any(w in lines[0] for w in kind_words), err


# -- the table -------------------------------------------------------------------------------------
async def test_refused() -> None:
    url = f"redis://127.0.0.1:{free_port()}"  # nothing listens: a killed server
    ctx = await make_ctx(url, prefix())
    attach_registry(ctx, url)
    check(await run_all(ctx, list(OPS)), "refused", unknown=set())
    await check_cli(url, ("cannot reach",))


async def test_refused_with_default_settings() -> None:
    url = f"redis://127.0.0.1:{free_port()}"
    settings = load_settings(redis_url=url)
    svc = RedisSessionService(settings=settings)
    start = time.monotonic()
    with pytest.raises(RedisUnavailableError) as info:
        await svc.create_session(app_name=APP, user_id="u")
    assert info.value.kind == "refused" and not isinstance(info.value, RedisOutcomeUnknownError)
    with pytest.raises(ConnectionError):
        await svc.get_session(app_name=APP, user_id="u", session_id="x")
    assert time.monotonic() - start < 5 * 2 + 2  # within the deadline each


def test_refused_cli_subprocess() -> None:
    """The console script itself: exit code 3 and one line."""
    url = f"redis://127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [str(ADK), "--url", url, "stats"], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and f"cannot reach Redis at {url}" in proc.stderr, proc.stderr


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
async def test_cut_mid_reply(live: RedisServer, reset: bool) -> None:
    await warm_up(live)  # scripts loaded: a cut EVALSHA runs (else NOSCRIPT, nothing written)
    proxy = CuttingProxy(live.port, reset=reset)
    try:
        ctx = await make_ctx(proxy.url, prefix())
        attach_registry(ctx, proxy.url)
        results = await run_all(ctx, list(OPS))
        # the memory ingestion and the design API start with reads (the session, the owner record)
        check(results, "closed", unknown=WRITES)
        assert proxy.cuts >= len(OPS)
        # the cut create landed: the outcome really was unknown
        stored = await RedisSessionService(live.url, key_prefix=ctx.prefix).get_session(
            app_name=APP, user_id="u", session_id="n1"
        )
        assert stored is not None, "the create whose reply was cut was executed by the server"
    finally:
        proxy.close()


async def warm_up(server: RedisServer) -> Ctx:
    """Run every operation once against ``server`` directly (loads the scripts; stores session s1)."""
    ctx = await make_ctx(server.url, prefix())
    attach_registry(ctx, server.url)
    await ctx.sessions.create_session(app_name=APP, user_id="u", session_id="s1")
    results = await run_all(ctx, list(OPS))
    assert not [e for e in results.values() if isinstance(e, ConnectionError)], results
    return ctx


def stall(server: RedisServer, seconds: float) -> threading.Thread:
    client = server.client(socket_timeout=seconds + 5)

    def run() -> None:
        with client:
            client.execute_command("DEBUG", "SLEEP", seconds)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.1)
    return thread


@pytest.mark.parametrize(
    ("settings", "kind"),
    [
        ({"redis_operation_timeout": 0.5, "redis_socket_timeout": 2.0}, "deadline"),
        ({"redis_operation_timeout": 0, "redis_socket_timeout": 0.25}, "timeout"),
    ],
    ids=["deadline", "no-deadline"],
)
async def test_stall(live: RedisServer, settings: dict[str, Any], kind: str) -> None:
    ctx = await make_ctx(live.url, prefix(), **settings)
    ctx.reg_sessions = RedisSessionService(settings=ctx.settings)  # registry covered above: its probe blocks
    ctx.reg_memory = RedisMemoryService(settings=ctx.settings)
    names = [n for n in OPS if not n.startswith("design")]  # the design API's start-up PING would stall
    # one round first: every operation then holds a pooled connection, so the stalled command is sent
    # (a command whose new connection stalls in the handshake was never sent: outcome known)
    await ctx.sessions.create_session(app_name=APP, user_id="u", session_id="s1")
    warm = await run_all(ctx, names)
    assert not [e for e in warm.values() if isinstance(e, ConnectionError)], warm
    thread = stall(live, 1.5)
    try:
        results = await run_all(ctx, names)
    finally:
        thread.join()
    check(results, kind, unknown=WRITES)


async def test_stall_design_api(live: RedisServer) -> None:
    """The design API against a server that stalls after the store started."""
    settings = load_settings(
        redis_url=live.url, redis_key_prefix=prefix(), redis_fallback_to_memory=False, **FAST
    )
    store = await asyncio.to_thread(create_session_store, settings=settings)
    try:
        thread = stall(live, 1.2)
        try:
            with pytest.raises(RedisUnavailableError) as info:
                await asyncio.to_thread(store.ensure_session, "d1", user_id="u")
        finally:
            thread.join()
        assert info.value.kind in ("deadline", "timeout")  # the socket timeout may come first
    finally:
        await asyncio.to_thread(store.close)


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("LOADING Redis is loading the dataset in memory", "loading"),
        ("TRYAGAIN Multiple keys request during rehashing of slot", "tryagain"),
        ("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.", "busy"),
    ],
    ids=["loading", "tryagain", "busy"],
)
async def test_refusing_replies(reply: str, kind: str) -> None:
    server = ErrorServer(reply)
    try:
        ctx = await make_ctx(server.url, prefix())
        attach_registry(ctx, server.url)
        check(await run_all(ctx, list(OPS)), kind, unknown=set())
        if kind == "loading":
            await check_cli(server.url, ("LOADING",))
    finally:
        server.close()


async def test_readonly_replica(live: RedisServer) -> None:
    replica = RedisServer(
        args=["--replicaof", "127.0.0.1", str(live.port), "--replica-read-only", "yes"]
    ).start()
    try:
        deadline = time.monotonic() + 10
        while replica.client().info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.05)
        # the session exists (replicated), so appends and deletes reach their writes
        pre = prefix()
        await RedisSessionService(live.url, key_prefix=pre).create_session(
            app_name=APP, user_id="u", session_id="s1"
        )
        meta = KeySchema(pre).session(APP, "u", "s1").meta
        while not replica.client().exists(meta):
            assert time.monotonic() < deadline, "the session did not replicate"
            time.sleep(0.02)
        ctx = await make_ctx(replica.url, pre)
        attach_registry(ctx, replica.url)
        names = [*sorted(WRITES), "add_session_to_memory", "design_ensure_session"]
        check(await run_all(ctx, names), "readonly", unknown=set())
    finally:
        replica.stop()


async def test_masterdown_replica() -> None:
    replica = RedisServer(args=["--replicaof", "127.0.0.1", str(free_port())]).start()
    try:
        replica.client().config_set("replica-serve-stale-data", "no")  # PING answers MASTERDOWN from now
        ctx = await make_ctx(replica.url, prefix())
        attach_registry(ctx, replica.url)
        check(await run_all(ctx, list(OPS)), "masterdown", unknown=set())
        await check_cli(replica.url, ("MASTERDOWN",))
    finally:
        replica.stop()


async def test_clusterdown_node() -> None:
    """A cluster node that serves no slot answers CLUSTERDOWN to every key (a standalone client here)."""
    node = RedisServer(args=["--cluster-enabled", "yes"]).start()
    try:
        ctx = await make_ctx(node.url, prefix())
        attach_registry(ctx, node.url)
        check(await run_all(ctx, list(OPS)), "clusterdown", unknown=set())
    finally:
        node.stop()


def api_app(url: str) -> Any:
    """ADK's FastAPI app (what ``adk api_server`` serves) of the samples, our services on ``url``."""
    from google.adk.cli.fast_api import get_fast_api_app

    samples = Path(__file__).resolve().parents[1] / "samples"
    return get_fast_api_app(
        agents_dir=str(samples),
        session_service_uri=url,
        memory_service_uri=url,
        artifact_service_uri="memory://",
        web=False,
    )


def api_answers(app: Any) -> list[Any]:
    """The app's answers to a session create, get and list and a /run."""
    from fastapi.testclient import TestClient

    run = {
        "app_name": "hello_agent",
        "user_id": "u",
        "session_id": "s1",
        "new_message": {"role": "user", "parts": [{"text": "hi"}]},
    }
    with TestClient(app) as client:
        return [
            client.post("/apps/hello_agent/users/u/sessions", json={}),  # HTTPException(500) from ADK
            client.get("/apps/hello_agent/users/u/sessions/s1"),
            client.get("/apps/hello_agent/users/u/sessions"),
            client.post("/run", json=run),
        ]


def test_api_server_answers_503(monkeypatch: pytest.MonkeyPatch) -> None:
    """ADK's FastAPI app (what ``adk api_server`` serves) with our services on a stopped server: 503 and
    one line for ADK's routes that re-raise errors as HTTPException(500) and for those that do not."""
    import adk_redis

    monkeypatch.setenv("ADK_REDIS_LOCAL_MODEL", "1")
    adk_redis.register()
    url = f"redis://127.0.0.1:{free_port()}"
    for answer in api_answers(api_app(url)):
        assert answer.status_code == 503, (answer.request.url, answer.status_code, answer.text)
        detail = answer.json()["detail"]
        assert detail.startswith(f"cannot reach Redis at {url}") and "\n" not in detail, detail
        assert answer.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("password", "line"),
    [
        (None, "authentication required: the Redis server needs a password; put it in the URL"),
        ("wrong", "authentication failed: invalid username-password pair"),
    ],
)
def test_api_server_names_a_missing_or_wrong_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, password: str | None, line: str
) -> None:
    """A new user's usual mistake: a server with ``requirepass`` and no (or a wrong) password in the URI.
    The start-up warning and every route say so in one line (503), not redis-py's "HELLO must be
    called with the client already authenticated" (500, or a bare "Internal Server Error")."""
    import adk_redis

    monkeypatch.setenv("ADK_REDIS_LOCAL_MODEL", "1")
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    adk_redis.register()
    server = RedisServer(args=["--requirepass", "s3cret-pw"], ping_kwargs={"password": "s3cret-pw"}).start()
    try:
        auth = f":{password}@" if password else ""
        url = f"redis://{auth}127.0.0.1:{server.port}/0"
        with caplog.at_level("WARNING", logger="adk_redis.registry"):
            app = api_app(url)
        warnings = [r.getMessage() for r in caplog.records if r.name == "adk_redis.registry"]
        assert len(warnings) == 2 and all(line in w for w in warnings), warnings
        for answer in api_answers(app):
            assert answer.status_code == 503, (answer.request.url, answer.status_code, answer.text)
            detail = answer.json()["detail"]
            assert detail.startswith(line) and "\n" not in detail and "s3cret" not in detail, detail
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (
            redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."),
            "refused",
        ),
        (redis.exceptions.ConnectionError("Connection closed by server."), "closed"),
        (redis.exceptions.TimeoutError("Timeout reading from 127.0.0.1:1"), "timeout"),
        (TimeoutError("no reply within 1 s (REDIS_OPERATION_TIMEOUT)"), "deadline"),
        (redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"), "loading"),
        (redis.exceptions.ReadOnlyError("You can't write against a read only replica."), "readonly"),
        (redis.exceptions.MasterDownError("Link with MASTER is down"), "masterdown"),
        (redis.exceptions.ClusterDownError("The cluster is down"), "clusterdown"),
        (redis.exceptions.TryAgainError("Multiple keys request during rehashing of slot"), "tryagain"),
        (redis.exceptions.ResponseError("BUSY Redis is busy running a script."), "busy"),
        (redis.exceptions.RedisClusterException("Redis Cluster cannot be connected."), "cluster"),
        (redis.exceptions.AuthenticationError("invalid password"), None),
        (redis.exceptions.ResponseError("ERR unknown command 'VCARD'"), None),
        (redis.exceptions.ResponseError("BUSYGROUP Consumer Group name already exists"), None),
        (redis.exceptions.NoScriptError("No matching script."), None),
        (ValueError("a bug"), None),
    ],
)
def test_typed_error_classifies(exc: BaseException, kind: str | None) -> None:
    from adk_redis._core.connection import _Call, typed_error

    typed = typed_error(exc, what="GET", where="Redis at redis://h:1", writes=False)
    if kind is None:
        assert typed is exc  # an answer (or a bug): propagates unchanged
        return
    assert isinstance(typed, RedisUnavailableError) and typed.kind == kind
    assert not isinstance(typed, RedisOutcomeUnknownError)
    sent = _Call()
    sent.sends = 1  # a write whose request went out, unanswered
    write = typed_error(exc, what="EVALSHA", where="Redis at redis://h:1", writes=True, call=sent)
    assert isinstance(write, RedisOutcomeUnknownError) and write.kind == kind
    assert "may have landed" in str(write)


async def test_runner_surfaces_the_typed_error() -> None:
    """ADK's Runner re-raises the service's error: the caller of run_async gets it, typed."""
    from google.adk.agents.llm_agent import LlmAgent
    from google.adk.runners import Runner

    url = f"redis://127.0.0.1:{free_port()}"
    sessions = RedisSessionService(settings=load_settings(redis_url=url, **FAST))
    runner = Runner(
        app_name=APP, agent=LlmAgent(name="agent", model="gemini-2.0-flash"), session_service=sessions
    )
    message = types.Content(role="user", parts=[types.Part(text="hi")])
    with pytest.raises(RedisUnavailableError) as info:
        async for _ in runner.run_async(user_id="u", session_id="s1", new_message=message):
            pass
    assert info.value.kind == "refused" and "cannot reach Redis at" in str(info.value)
