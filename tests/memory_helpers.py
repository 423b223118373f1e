"""Helpers shared by the memory tests."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions.session import Session
from google.genai import types

from adk_redis import RedisSettings
from tests.helpers import drop_prefix as drop_prefix
from tests.helpers import missing  # defined there; the memory tests import it here

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


def settings_for(prefix: str, **ttl_hours: float) -> RedisSettings:
    return RedisSettings.model_validate({"redis_key_prefix": prefix, **ttl_hours})


LOCOMO_APP = "locomo"


def locomo_dev_file() -> Path:
    """LoCoMo's development half (``LOCOMO_DEV``, see bench/locomo.py); missing: fails in CI, else skips."""
    from bench import locomo

    path = locomo.dev_path(Path(__file__).resolve().parent.parent)
    if path is None or not path.is_file():
        missing(f"LoCoMo development half not found (LOCOMO_DEV={os.environ.get('LOCOMO_DEV')!r})")
    return path
