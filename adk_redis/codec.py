"""Serialization: JSON with a format version, never pickle.

Events are stored as ``"1:" + <Event JSON>`` (pydantic, lossless: bytes travel
as base64).  State values are stored one JSON document per key, coerced to
JSON-safe values exactly like ADK's DatabaseSessionService does.
"""

from __future__ import annotations

import json
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions import _session_util
from pydantic import ValidationError

from .errors import CorruptedDataError

FORMAT_VERSION = 1
_EVENT_TAG = f"{FORMAT_VERSION}:"


def text(value: bytes | str) -> str:
    """Decode a Redis reply element to str (clients may or may not decode)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def encode_event(event: Event) -> str:
    """Serialize an event for storage."""
    return _EVENT_TAG + event.model_dump_json(exclude_none=True)


def decode_event(payload: bytes | str, *, where: str) -> Event:
    """Deserialize a stored event; raise CorruptedDataError naming ``where``."""
    raw = text(payload)
    version, sep, body = raw.partition(":")
    if not sep or version != str(FORMAT_VERSION):
        raise CorruptedDataError(f"{where}: unknown event format {version[:16]!r}")
    try:
        return Event.model_validate_json(body)
    except ValidationError as exc:
        raise CorruptedDataError(f"{where}: stored event is not valid ({exc.error_count()} errors)") from None


def json_safe(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Split a state dict into app/user/session deltas, coerced to JSON-safe values."""
    return _session_util.extract_json_safe_state_delta(state)


# What json.dumps(value, ensure_ascii=False, separators=(",", ":")) builds on every call.
_VALUE_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_value(value: Any) -> str:
    """Encode one (already JSON-safe) state value."""
    return _VALUE_ENCODER.encode(value)


def decode_value(payload: bytes | str, *, where: str) -> Any:
    """Decode one stored state value."""
    try:
        return json.loads(payload)
    except (ValueError, TypeError):
        raise CorruptedDataError(f"{where}: stored state value is not JSON") from None


def flatten(mapping: dict[str, Any], field_prefix: str = "") -> list[str]:
    """``{k: v}`` -> ``[prefix+k, json(v), ...]`` for HSET-style arguments."""
    out: list[str] = []
    for key, value in mapping.items():
        out.append(field_prefix + key)
        out.append(encode_value(value))
    return out


def decode_hash(pairs: dict[Any, Any] | list[Any], *, where: str) -> dict[str, Any]:
    """Decode a HGETALL reply (dict, or flat list from Lua) of JSON values."""
    items = pairs.items() if isinstance(pairs, dict) else zip(pairs[::2], pairs[1::2])
    return {text(k): decode_value(v, where=where) for k, v in items}
