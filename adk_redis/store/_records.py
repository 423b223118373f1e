"""How the design's records map onto ADK sessions and events, and the checks of what callers pass.

A store session is an ADK session: title, status, metadata and creation time live in session state under
``store:``-prefixed keys; a message is an ADK :class:`Event` (author = role, text content, metadata in
``custom_metadata``).  These functions build the design's dicts from ADK objects and validate input
(``TypeError`` / ``ValueError``, never a partial write).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from google.adk.events.event import Event
from google.adk.sessions.session import Session

STATE_TITLE = "store:title"
STATE_STATUS = "store:status"
STATE_METADATA = "store:metadata"
STATE_CREATED = "store:created_at"
DEFAULT_USER = "anonymous"
"""Owner of sessions created by :meth:`SessionStore.ensure_session` without a user id."""

_RESERVED = frozenset(
    {"id", "session_id", "app_name", "messages", "message_count", "created_at", "updated_at"}
)


def check_session_id(session_id: str) -> str:
    if not isinstance(session_id, str):
        raise TypeError(f"session_id must be str, got {type(session_id).__name__}")
    sid = session_id.strip()
    if not sid:
        raise ValueError("session_id must not be empty")
    return sid


def json_dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a dict, got {type(value).__name__}")
    try:
        return cast(dict[str, Any], json.loads(json.dumps(dict(value))))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serializable: {exc}") from None


def metadata_from(extra: Mapping[str, Any]) -> dict[str, Any]:
    """``**metadata`` of ensure_session; a nested ``metadata`` dict (export/import) is merged."""
    out = dict(json_dict(extra.get("metadata"), "metadata")) if "metadata" in extra else {}
    out.update({k: v for k, v in extra.items() if k not in _RESERVED and k != "metadata"})
    return json_dict(out, "metadata")


def message_dict(event: Event) -> dict[str, Any] | None:
    content = event.content
    if content is None or not content.parts:
        return None
    texts = [p.text for p in content.parts if p.text is not None and not p.thought]
    if not texts:
        return None
    return {
        "id": event.id,
        "role": event.author,
        "content": "".join(texts),
        "metadata": dict(event.custom_metadata or {}),
        "timestamp": event.timestamp,
    }


def summary_dict(session: Session) -> dict[str, Any]:
    state = session.state
    return {
        "id": session.id,
        "app_name": session.app_name,
        "user_id": session.user_id,
        "title": state.get(STATE_TITLE),
        "status": state.get(STATE_STATUS),
        "metadata": dict(state.get(STATE_METADATA) or {}),
        "created_at": state.get(STATE_CREATED),
        "updated_at": session.last_update_time,
    }


def session_dict(session: Session) -> dict[str, Any]:
    out = summary_dict(session)
    messages = [m for m in (message_dict(e) for e in session.events) if m is not None]
    out["messages"] = messages
    out["message_count"] = len(messages)
    return out


def check_message(message: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    if not isinstance(message, Mapping):
        raise TypeError(f"message must be a dict, got {type(message).__name__}")
    role, content = message.get("role"), message.get("content")
    if not isinstance(role, str) or not role.strip():
        raise ValueError("message['role'] must be a non-empty str")
    if not isinstance(content, str):
        raise TypeError(f"message['content'] must be str, got {type(content).__name__}")
    return role.strip(), content, json_dict(message.get("metadata"), "message['metadata']")
