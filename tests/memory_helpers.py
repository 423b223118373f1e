"""Helpers shared by the memory tests."""

from __future__ import annotations

import itertools
import time
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions.session import Session
from google.genai import types

from adk_redis import RedisSettings

_ids = itertools.count()


def make_event(
    text: str, *, author: str = "user", event_id: str | None = None, ts: float | None = None
) -> Event:
    return Event(
        id=event_id or f"ev{next(_ids)}",
        author=author,
        invocation_id="inv",
        timestamp=time.time() if ts is None else ts,
        content=types.Content(role="user" if author == "user" else "model", parts=[types.Part(text=text)]),
    )


def make_session(app: str, user: str, sid: str, texts: list[str]) -> Session:
    return Session(id=sid, app_name=app, user_id=user, events=[make_event(t) for t in texts])


def texts_of(response: Any) -> list[str]:
    return [" ".join(p.text or "" for p in (m.content.parts or [])) for m in response.memories]


async def drop_prefix(client: Any, prefix: str) -> None:
    """Test-only cleanup of one unique prefix (never a request path)."""
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)


def settings_for(prefix: str, **ttl_hours: float) -> RedisSettings:
    return RedisSettings.model_validate({"redis_key_prefix": prefix, **ttl_hours})
