"""Helpers shared by the tests (import them from here, never from ``conftest.py`` or a ``test_*`` file).

- :func:`in_ci` / :func:`missing`: one definition of "running in CI" (``CI=true``, which ``.ci/run``
  exports): a missing prerequisite fails there and skips elsewhere.
- :func:`drop_prefix`: test-only cleanup of one unique key prefix.
- :func:`text_event`, :func:`chat_event`: ADK events with text and a state delta.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.genai import types

_TRUE = frozenset({"1", "true", "yes", "on"})
#: Settings that give up on an unreachable Redis quickly (outage and write-back tests).
FAST_FAILURE = {"redis_connect_timeout": 0.2, "redis_socket_timeout": 0.5, "redis_retry_attempts": 1}


def in_ci() -> bool:
    """True under ``CI=true`` (also ``1``/``yes``/``on``, any case): the one CI check of the tests."""
    return os.environ.get("CI", "").strip().lower() in _TRUE


def missing(message: str) -> NoReturn:
    """A test's prerequisite (a server, a binary, a data file) is missing: fail in CI, else skip."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


async def drop_prefix(client: Any, prefix: str) -> None:
    """Delete every key of one unique test prefix (SCAN: test-only cleanup, never a request path)."""
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)


def text_event(text: str, *, author: str = "user", ts: float | None = None, **delta: Any) -> Event:
    """An event with ``text`` and the state delta ``delta`` (keyword arguments)."""
    event = Event(
        author=author,
        invocation_id="inv",
        content=types.Content(role="user" if author == "user" else "model", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=dict(delta)) if delta else EventActions(),
    )
    if ts is not None:
        event.timestamp = ts
    return event


def delta_event(**delta: Any) -> Event:
    """An agent event without content, with the state delta ``delta``."""
    return Event(author="agent", invocation_id="inv", actions=EventActions(state_delta=delta))


def chat_event(author: str, text: str, delta: dict[str, Any] | None = None) -> Event:
    """An event of ``author`` with ``text`` and the state delta ``delta`` (keys such as ``user:x``)."""
    return Event(
        author=author,
        invocation_id="inv",
        content=types.Content(role="user" if author == "user" else "model", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=delta or {}),
    )
