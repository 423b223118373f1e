"""Memory documents: their ids and stored payloads, built and parsed here and nowhere else.

Ids
---
A search index (:mod:`adk_redis.memory._search`) holds documents of four sources,
told apart by the head of their id; every component is escaped with
:func:`adk_redis.keys.escape`, so a component never contains ``:``:

=============================  ===========  =========================================================
id                             source       written by
=============================  ===========  =========================================================
``h:<session>:<event>``        history      :meth:`RedisMemoryService.add_events_to_memory` (an
                                            ingested event; an event without an id gets a stable
                                            hash, see :func:`history_ids`)
``m:<id>``                     memory       :meth:`RedisMemoryService.add_memory` (stored id; the
                                            caller's ``<id>`` is what a search returns, see
                                            :func:`public_id`)
``c:<context key>``            context      :meth:`CrossSessionMemory.store_user_context`
``k:<category>:<key>``         knowledge    :meth:`CrossSessionMemory.store_knowledge` (in the app's
                                            knowledge index; ``<category>:<key>`` is also its member
                                            in the knowledge registry, :func:`knowledge_member`)
=============================  ===========  =========================================================

Ids seen by callers (:func:`public_id`, :func:`doc_id_of`): an explicit memory is returned under the
id its caller gave (``car``, never ``m:car``); every other id is returned as stored.  Ids the service
generates start with ``h:``, ``c:``, ``k:`` or ``f:`` (:data:`GENERATED_HEADS`); a caller id of that form is
refused (:func:`check_caller_id`), so a caller id never names a generated memory.

Payloads
--------
The index's ``docs`` HASH maps an id to a JSON object (compact separators,
non-ASCII kept; context and knowledge payloads have sorted keys):

===========  ===============================================================
field        meaning
===========  ===============================================================
``v``        payload format version (``1``; history ``2``: indexed with context-only terms negated)
``src``      ``history``, ``memory``, ``context`` or ``knowledge`` (absent: ``history``)
``content``  the ``google.genai`` Content (JSON), what a search returns
``author``   who said it (``user`` for context, ``knowledge`` for knowledge)
``ts``       epoch seconds (float) or null
``sid``      history / memory: session id (memory: its ``session_id`` metadata)
``eid``      history / memory: event id (memory: the memory's own id)
``nb``       history: ids of the other party's adjacent turns (shown as ``context`` with a hit)
``meta``     memory: the entry's ``custom_metadata``
``key``      context: the context key; knowledge: the knowledge key
``category`` knowledge: its category
``data``     context / knowledge: the stored JSON object
===========  ===============================================================

Values beside the index
-----------------------
User context, agent memory and knowledge are also stored as plain JSON objects
(sorted keys, :func:`dump_value`) under their own keys; one session-history
entry is ``{"session_id", "timestamp", "summary"}`` (:func:`history_record`).
Every one of them is read back with :func:`load_object`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from google.adk.memory.memory_entry import MemoryEntry
from google.genai import types
from pydantic import ValidationError

from ..errors import CorruptedDataError
from ..keys import escape, unescape

if TYPE_CHECKING:
    from google.adk.events.event import Event

__all__ = [
    "FORMAT_VERSION",
    "HISTORY_FORMAT_VERSION",
    "is_legacy_history",
    "UNKNOWN_SESSION_ID",
    "DocId",
    "Source",
    "GENERATED_HEADS",
    "check_caller_id",
    "content_text",
    "doc_id_of",
    "context_id",
    "context_items",
    "context_payload",
    "decode_entry",
    "dump_value",
    "history_id",
    "history_ids",
    "history_payload",
    "history_record",
    "knowledge_filter",
    "knowledge_id",
    "knowledge_member",
    "knowledge_payload",
    "knowledge_result",
    "load_object",
    "memory_id",
    "memory_payload",
    "parse_id",
    "TTL_KEYS",
    "public_id",
    "ttl_hours_of",
    "session_range",
    "source_range",
    "source_of",
]

Source = Literal["history", "memory", "context", "knowledge"]

HISTORY = "h"
MEMORY = "m"
CONTEXT = "c"
KNOWLEDGE = "k"
_SOURCES: dict[str, Source] = {
    HISTORY: "history",
    MEMORY: "memory",
    CONTEXT: "context",
    KNOWLEDGE: "knowledge",
}
_TWO_PARTS = (HISTORY, KNOWLEDGE)
#: Heads of the ids the service generates: a caller's memory id may not start with ``<head>:``.
GENERATED_HEADS = frozenset({HISTORY, CONTEXT, KNOWLEDGE, "f"})  # f: extracted facts (memory._facts)

#: The payload format written today (field ``v``).
FORMAT_VERSION = 1
#: History payloads: 2 since their turns are indexed with context-only terms negated (a hit needs a
#: term of its own) and carry ``nb``; a ``v`` 1 turn may still match through its context alone.
HISTORY_FORMAT_VERSION = 2
#: Session id of history ingested without one.
UNKNOWN_SESSION_ID = "__unknown_session_id__"


# -- ids ---------------------------------------------------------------------------
def history_id(session_id: str, event_id: str) -> str:
    """``h:<session>:<event>``."""
    return f"{HISTORY}:{escape(session_id)}:{escape(event_id)}"


def history_ids(session_id: str | None, event: Event) -> tuple[str, str]:
    """``(memory id, event id)`` of an ingested event: ``h:<session>:<event>``, components escaped.

    A missing session id is :data:`UNKNOWN_SESSION_ID`; an event without an id gets a stable
    hash of its author, timestamp and content.
    """
    sid = session_id or UNKNOWN_SESSION_ID
    eid = event.id
    if not eid:
        content = event.content.model_dump(mode="json", exclude_none=True) if event.content else None
        eid = hashlib.sha256(f"{event.author}:{event.timestamp}:{_dumps(content)}".encode()).hexdigest()[:32]
    return history_id(sid, eid), eid


def session_range(session_id: str) -> tuple[str, str]:
    """The lex range (``ZRANGEBYLEX`` syntax) of one session's history ids ``h:<session>:...``."""
    head = f"{HISTORY}:{escape(session_id)}"
    return f"[{head}:", f"({head};"


def source_range(source: Source | None) -> tuple[str, str]:
    """The lex range of the ids of one source (every id for None)."""
    if source is None:
        return "-", "+"
    head = next(h for h, s in _SOURCES.items() if s == source)
    return f"[{head}:", f"({head};"


def memory_id(entry_id: str) -> str:
    """``m:<id>`` of an explicit memory."""
    return f"{MEMORY}:{escape(entry_id)}"


def context_id(context_key: str) -> str:
    """``c:<context key>`` of a user-context document."""
    return f"{CONTEXT}:{escape(context_key)}"


def knowledge_member(category: str, knowledge_key: str) -> str:
    """``<category>:<key>``: a knowledge document's member in the app's knowledge registry."""
    return f"{escape(category)}:{escape(knowledge_key)}"


def knowledge_id(category: str, knowledge_key: str) -> str:
    """``k:<category>:<key>`` of a knowledge document."""
    return f"{KNOWLEDGE}:{knowledge_member(category, knowledge_key)}"


def knowledge_filter(category: str | None = None) -> str:
    """The id prefix of every knowledge document (of one ``category`` if given), for searches."""
    return f"{KNOWLEDGE}:" if category is None else f"{KNOWLEDGE}:{escape(category)}:"


def check_caller_id(entry_id: str) -> str:
    """A caller's memory id, checked: ValueError when it has the form of a generated id (``h:...``)."""
    if not isinstance(entry_id, str) or not entry_id:
        raise ValueError(f"memory id must be a non-empty string, got {entry_id!r}")
    head, sep, _ = entry_id.partition(":")
    if sep and head in GENERATED_HEADS:
        raise ValueError(
            f"memory id {entry_id!r} is reserved: ids starting with "
            f"{', '.join(sorted(h + ':' for h in GENERATED_HEADS))} name memories the service generates"
        )
    return entry_id


def public_id(doc_id: str) -> str:
    """The id a caller sees for a stored document id: an explicit memory's own id, else ``doc_id``."""
    head, sep, rest = doc_id.partition(":")
    if sep and head == MEMORY:
        return unescape(rest)
    return doc_id


def doc_id_of(public: str) -> str:
    """The stored document id of an id a search returned (inverse of :func:`public_id`)."""
    head, sep, _ = public.partition(":")
    if sep and head in GENERATED_HEADS:
        return public
    return memory_id(public)


@dataclass(frozen=True)
class DocId:
    """A parsed document id: its source and its unescaped components.

    ``parts``: history (session, event), memory (id,), context (key,), knowledge (category, key).
    """

    source: Source
    parts: tuple[str, ...]

    def metadata(self) -> dict[str, str]:
        """The ``custom_metadata`` a search result of this id carries (from the id alone)."""
        if self.source == "history":
            return {"source": "history", "session_id": self.parts[0], "event_id": self.parts[1]}
        if self.source == "memory":
            return {"source": "memory", "event_id": self.parts[0]}
        if self.source == "context":
            return {"source": "context", "context_key": self.parts[0]}
        return {"source": "knowledge", "category": self.parts[0], "knowledge_key": self.parts[1]}


def source_of(doc_id: str) -> Source | None:
    """The source an id's head names (``h m c k``), or None; the rest is not checked."""
    head, sep, _ = doc_id.partition(":")
    return _SOURCES.get(head) if sep else None


def parse_id(doc_id: str) -> DocId | None:
    """Parse a document id; None when its head is not one of ``h m c k``.

    Lenient like the readers it replaced: a missing second component is ``""``; a component
    that is not valid escaping raises ValueError.
    """
    source = source_of(doc_id)
    if source is None:
        return None
    head, _, rest = doc_id.partition(":")
    if head in _TWO_PARTS:
        first, _, second = rest.partition(":")
        return DocId(source, (unescape(first), unescape(second)))
    return DocId(source, (unescape(rest),))


# -- TTL overrides ---------------------------------------------------------------
#: ``custom_metadata`` keys that set a memory's TTL: ``ttl`` (Vertex AI Memory Bank's spelling: a
#: duration such as ``"3600s"``, or seconds) and ``ttl_hours``.  They are settings, never stored.
TTL_KEYS = ("ttl", "ttl_hours")
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(s?)\s*")


def _positive(key: str, value: object, seconds: float | None) -> float:
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        want = (
            "a positive number of hours"
            if key == "ttl_hours"
            else ('a positive duration: seconds or a string such as "3600s"')
        )
        raise ValueError(f"custom_metadata[{key!r}] must be {want}, got {value!r}")
    return seconds


def ttl_hours_of(*metadata: Mapping[str, object] | None) -> float | None:
    """The TTL (hours) the first of ``metadata`` that sets one asks for; None when none does.

    ``ttl_hours``: hours (number or numeric string).  ``ttl``: a ``timedelta``, seconds (number), or a
    duration string ``"<seconds>s"`` (Memory Bank / protobuf Duration JSON).  ``ttl_hours`` wins when
    one mapping has both.  Raises ValueError naming the key and the value for anything else
    (``"abc"``, ``-1``, ``0``, ``True``).
    """
    for meta in metadata:
        if not meta:
            continue
        for key in ("ttl_hours", "ttl"):
            value = meta.get(key)
            if value is None:
                continue
            seconds: float | None = None
            if isinstance(value, timedelta) and key == "ttl":
                seconds = value.total_seconds()
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                seconds = float(value) * (3600 if key == "ttl_hours" else 1)
            elif isinstance(value, str):
                m = _DURATION.fullmatch(value)
                if m and not (key == "ttl_hours" and m.group(2)):
                    seconds = float(m.group(1)) * (3600 if key == "ttl_hours" else 1)
            return _positive(key, value, seconds) / 3600
    return None


# -- payloads ----------------------------------------------------------------------
def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def dump_value(value: Any) -> str:
    """A stored JSON value: compact, non-ASCII kept, sorted keys."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def content_text(content: types.Content | None) -> str:
    """The searchable text of a content (text parts joined, thoughts excluded)."""
    if content is None or not content.parts:
        return ""
    return " ".join(p.text for p in content.parts if p.text and not p.thought)


def history_payload(event: Event, session_id: str, event_id: str, neighbours: Sequence[str] = ()) -> str:
    """The payload of an ingested event (``src`` ``history``); the event has content.

    ``neighbours``: ids of the adjacent turns of the other party (field ``nb``), returned with a hit
    as ``custom_metadata["context"]`` while they exist.
    """
    assert event.content is not None
    doc: dict[str, Any] = {
        "v": HISTORY_FORMAT_VERSION,
        "src": "history",
        "content": event.content.model_dump(mode="json", exclude_none=True),
        "author": event.author,
        "ts": event.timestamp,
        "sid": session_id,
        "eid": event_id,
    }
    if neighbours:
        doc["nb"] = list(neighbours)
    return _dumps(doc)


def is_legacy_history(payload: str) -> bool:
    """A history payload indexed before ``HISTORY_FORMAT_VERSION`` 2 (its context terms can make a hit)."""
    return not payload.startswith('{"v":2,') and ('"src":"history"' in payload or '"src"' not in payload)


def context_items(raw: str) -> list[dict[str, Any]]:
    """A hit's ``custom_metadata["context"]`` from the search script's ``[[id, author, text], ...]``."""
    if not raw:
        return []
    try:
        items = json.loads(raw)
        return [{"id": public_id(i), "author": a or None, "text": t} for i, a, t in items]
    except (ValueError, TypeError):
        return []


def memory_payload(entry: MemoryEntry, entry_id: str, ts: float | None) -> str:
    """The payload of an explicit memory (``src`` ``memory``) stored under ``entry_id``."""
    return _dumps(
        {
            "v": FORMAT_VERSION,
            "src": "memory",
            "content": entry.content.model_dump(mode="json", exclude_none=True),
            "author": entry.author,
            "ts": ts,
            "meta": {k: v for k, v in entry.custom_metadata.items() if k not in TTL_KEYS},
            "sid": entry.custom_metadata.get("session_id"),
            "eid": entry_id,
        }
    )


def context_payload(context_key: str, data: dict[str, Any], value: str, ts: float) -> str:
    """The payload of a user-context document; ``value`` is ``dump_value(data)``."""
    body = f"{context_key}: {value}"
    return dump_value(
        {
            "v": FORMAT_VERSION,
            "src": "context",
            "key": context_key,
            "data": data,
            "ts": ts,
            "author": "user",
            "content": {"role": "user", "parts": [{"text": body}]},
        }
    )


def knowledge_payload(category: str, knowledge_key: str, data: dict[str, Any], value: str, ts: float) -> str:
    """The payload of a knowledge document; ``value`` is ``dump_value(data)``."""
    body = f"{category} {knowledge_key}: {value}"
    return dump_value(
        {
            "v": FORMAT_VERSION,
            "src": "knowledge",
            "category": category,
            "key": knowledge_key,
            "data": data,
            "ts": ts,
            "author": "knowledge",
            "content": {"role": "model", "parts": [{"text": body}]},
        }
    )


def history_record(session_id: str, timestamp: float, summary: dict[str, Any]) -> dict[str, Any]:
    """One session-history entry (stored with :func:`dump_value`)."""
    return {"session_id": session_id, "timestamp": timestamp, "summary": summary}


def load_object(raw: bytes | str, where: str) -> dict[str, Any]:
    """A stored JSON object; CorruptedDataError (naming ``where``) if it is not one."""
    try:
        value = json.loads(raw)
    except (ValueError, TypeError):
        raise CorruptedDataError(f"{where}: stored value is not JSON") from None
    if not isinstance(value, dict):
        raise CorruptedDataError(f"{where}: stored value is not a JSON object")
    return value


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


def decode_entry(doc_id: str, payload: str) -> MemoryEntry:
    """Build a MemoryEntry from a stored document; CorruptedDataError if it is not valid."""
    where = f"memory {doc_id!r}"
    try:
        doc = json.loads(payload)
        if not isinstance(doc, dict):
            raise CorruptedDataError(f"{where}: not a JSON object")
        content = types.Content.model_validate(doc["content"])
        meta: dict[str, Any] = dict(doc.get("meta") or {})
        src = doc.get("src", "history")
        meta["source"] = src
        if src in ("history", "memory"):
            meta.setdefault("session_id", doc.get("sid"))
            meta.setdefault("event_id", doc.get("eid"))
        elif src == "context":
            meta["context_key"] = doc.get("key")
        elif src == "knowledge":
            meta["category"] = doc.get("category")
            meta["knowledge_key"] = doc.get("key")
        return MemoryEntry(
            id=public_id(doc_id),
            content=content,
            author=doc.get("author"),
            timestamp=_iso(doc.get("ts")),
            custom_metadata=meta,
        )
    except (ValueError, TypeError, KeyError, ValidationError) as exc:
        if isinstance(exc, CorruptedDataError):
            raise
        raise CorruptedDataError(f"{where}: stored document is not valid") from None


def knowledge_result(payload: str, where: str) -> dict[str, Any]:
    """``{"category", "key", "data"}`` of a knowledge payload (CorruptedDataError / KeyError if not one)."""
    doc = load_object(payload, where)
    return {"category": doc["category"], "key": doc["key"], "data": doc["data"]}
