"""RedisMemoryService: ADK long-term memory with BM25 full-text search in Redis.

Scope: every read and write is keyed by (app, user).  A search covers the
user's ingested history (session events), memories added with
:meth:`add_memory`, the user's context documents (:class:`CrossSessionMemory`)
and the app's shared knowledge (per app, visible to all its users, never
deletable through a user's :meth:`delete_memory`).  Memory ids returned by
:meth:`search_memory` are ``h:<session>:<event>`` (history), ``m:<id>``
(explicit memories), ``c:<context key>`` (user context) and
``k:<category>:<key>`` (knowledge), components escaped; ids and stored payloads
are built and parsed by :mod:`adk_redis.memory._docs`.

TTLs: history entries ``HISTORY_TTL_HOURS``, explicit memories and user
context ``MEMORY_TTL_HOURS``, knowledge ``KNOWLEDGE_TTL_HOURS`` (override per
call with ``custom_metadata={"ttl_hours": ...}``).  Expired entries are never
returned.  With an :class:`~adk_redis.memory.embeddings.Embedder`, search is hybrid:
BM25 and cosine scores fused (:func:`~adk_redis.memory.embeddings.fuse`, weight
``hybrid_weight``); every document (history, memories, user context, knowledge)
gets a vector.  On Redis 8 the
vectors live in vector sets searched with ``VSIM`` (HNSW); on other servers
the cosine ranking is computed client-side (see :mod:`adk_redis.memory._vectors`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from google.adk.memory.base_memory_service import BaseMemoryService, SearchMemoryResponse
from google.adk.memory.memory_entry import MemoryEntry
from google.genai import types
from redis.exceptions import ResponseError
from typing_extensions import override

from .. import telemetry
from .._core.codec import text
from .._core.connection import create_client, is_cluster
from .._core.durability import Durability, Recorder
from .._core.kwargs import strict
from .._core.lifecycle import RedisClientOwner
from ..config import RedisSettings, resolve_settings
from ..errors import ConfigurationError, CorruptedDataError, InvalidCursorError, RedisOutOfMemoryError
from ..keys import KeySchema, MemoryIndexKeys, unescape
from ._cross_session import CrossSessionMemory, ttl_ms
from ._docs import (
    UNKNOWN_SESSION_ID,
    Source,
    check_caller_id,
    content_text,
    context_items,
    decode_entry,
    doc_id_of,
    history_ids,
    history_payload,
    is_legacy_history,
    knowledge_filter,
    memory_payload,
    parse_id,
    session_range,
    source_of,
    source_range,
    ttl_hours_of,
)
from ._docs import memory_id as memory_doc_id
from ._erase import ForgetResult
from ._erase import forget_user as erase_user
from ._facts import (
    FACT_PREFIX,
    FactAction,
    FactStore,
    boost_sources,
    collapse,
    decode_fact,
    erase_user_facts,
    is_fact_id,
    month,
)
from ._generator import JobEvent, MemoryGenerator
from ._jobs import GenerationRuntime, generation_stats
from ._search import Hit, SearchIndex, now_ms, partial_write_error, write_error
from ._tokenizer import own_terms, query_terms
from ._vectors import fetch_vectors, rank, rank_fetched
from .embeddings import Embedder, QueryVectors, fuse, pack

if TYPE_CHECKING:
    from google.adk.events.event import Event
    from google.adk.sessions.session import Session

logger = logging.getLogger("adk_redis.memory")

# Re-exported: they were defined here before adk_redis.memory._docs.
__all__ = [
    "HYBRID_WEIGHT",
    "ForgetResult",
    "MemoryPage",
    "RedisMemoryService",
    "decode_entry",
    "history_ids",
    "memory_text",
]
_HYBRID_POOL = 50
# search_kinds -> doc-id prefix of the user's index searched ("" = everything)
_KIND_FILTERS = {"all": "", "facts": FACT_PREFIX, "turns": "h:"}
# Hybrid score fusion: (1 - w) * BM25 / max BM25 + w * cosine / max cosine, w chosen on LoCoMo's
# development half with all-MiniLM-L6-v2 (docs/benchmarks.md, LoCoMo).
HYBRID_WEIGHT = 0.4


_KINDS: tuple[Source, ...] = ("history", "memory", "context")


@dataclass
class MemoryPage:
    """One page of :meth:`RedisMemoryService.list_memories`: entries in id order, and the cursor of
    the next page (None on the last)."""

    memories: list[MemoryEntry] = field(default_factory=list)
    next_cursor: str | None = None


def _encode_cursor(kind: str | None, after: str) -> str:
    raw = json.dumps({"k": kind, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, kind: str | None, lo: str, hi: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        after = data["a"]
        ok = isinstance(after, str) and data.get("k") == kind
    except (ValueError, TypeError, KeyError, binascii.Error):
        ok = False
    if not ok or (lo != "-" and not lo[1:] <= after < hi[1:]):
        raise InvalidCursorError("not a cursor of this memory listing (kind)")
    return str(after)


class _Doc(NamedTuple):
    """One document to index: searchable ``fields`` like its text, ``context`` at half weight."""

    doc_id: str
    body: str
    payload: str
    fields: tuple[str, ...] = ()
    context: tuple[str, ...] = ()
    vector_text: str = ""  # what is embedded (default: body)
    ttl: int | None = None  # ms; None: the call's


def _fields(author: str | None, ts: float | None) -> tuple[str, ...]:
    """Searchable fields of a memory: its author (the speaker) and the month and year it was said."""
    out = [author] if author else []
    if ts and (said := month(ts)):
        out.append(said)
    return tuple(out)


def _own_match(entry: MemoryEntry, terms: Sequence[str]) -> bool:
    """Whether a query term is in the entry's own text, speaker or month-year (the full-text hit rule)."""
    ts = datetime.fromisoformat(entry.timestamp).timestamp() if entry.timestamp else None
    own = own_terms(content_text(entry.content), _fields(entry.author, ts))
    return any(t in own for t in terms)


def _ttl_override(default_hours: float, *custom_metadata: Mapping[str, object] | None) -> int:
    """TTL (ms): ``ttl`` / ``ttl_hours`` of the first metadata that sets one (:func:`ttl_hours_of`)."""
    hours = ttl_hours_of(*custom_metadata)
    return ttl_ms(default_hours if hours is None else hours)


def memory_text(content: types.Content | None) -> str:
    """The searchable text of a content (text parts, thoughts excluded)."""
    return content_text(content)


class RedisMemoryService(RedisClientOwner, BaseMemoryService):
    """A persistent, multi-process ADK memory service backed by Redis.

    Args:
      uri: any redis-py URL or ``redis+cluster://``; defaults to ``REDIS_URL``.
      client: an injected ``redis.asyncio`` client (not closed by :meth:`close`).
      settings: explicit settings; otherwise read from the environment.
      key_prefix: overrides ``REDIS_KEY_PREFIX``.
      search_limit: maximum memories returned by :meth:`search_memory` (else ``MEMORY_SEARCH_LIMIT`` or
        the URL's ``?search_limit=``; default 10).
      min_score: :meth:`search_memory` leaves out memories scoring below it (else ``MEMORY_MIN_SCORE`` or
        ``?min_score=``; default 0).  Every returned entry carries its ``custom_metadata["score"]``: the
        BM25 score in full-text search (>= 0, unbounded), the fused score in hybrid search (0-1).
      agents_dir: accepted and ignored (ADK's service registry passes it).  Any other unknown
        keyword raises ``TypeError`` naming the accepted ones.
      embedder: optional :class:`~adk_redis.memory.embeddings.Embedder` for hybrid search.
      hybrid_weight: weight of the cosine in hybrid score fusion (BM25 gets ``1 - hybrid_weight``).
      vector_quantization: ``Q8`` (default), ``NOQUANT`` or ``BIN`` for Redis 8 vector sets
        (fixed when a vector set is created).
      read_stored_sessions: :meth:`add_session_to_memory` reads the session's events as stored by
        a :class:`~adk_redis.RedisSessionService` on the same Redis and key prefix (when it is
        there), so a stale session object still ingests every event.
      generator: a :class:`~adk_redis.memory.MemoryGenerator` (or a model name ADK resolves;
        default ``MEMORY_GENERATOR_MODEL``): ingestion also queues jobs that extract and
        consolidate facts (docs/guides/memory-generation.md).  None: turns only, as before.
      generator_worker: run a background worker task in this process (default); False when
        ``adk-redis memory worker`` processes do the work.
      search_kinds: ``all`` (default, ``MEMORY_SEARCH_KINDS``), ``facts`` or ``turns``.
    """

    @strict
    def __init__(
        self,
        uri: str | None = None,
        *,
        client: Any = None,
        settings: RedisSettings | None = None,
        key_prefix: str | None = None,
        search_limit: int | None = None,
        min_score: float | None = None,
        agents_dir: str | None = None,
        embedder: Embedder | None = None,
        vector_quantization: str = "Q8",
        read_stored_sessions: bool = True,
        hybrid_weight: float = HYBRID_WEIGHT,
        generator: MemoryGenerator | str | None = None,
        generator_worker: bool = True,
        search_kinds: str | None = None,
    ) -> None:
        del agents_dir
        if search_limit is not None and search_limit <= 0:
            raise ValueError("search_limit must be positive")
        if min_score is not None and not min_score >= 0:
            raise ValueError("min_score must be >= 0")
        if not 0.0 <= hybrid_weight <= 1.0:
            raise ValueError("hybrid_weight must be within [0, 1]")
        settings = resolve_settings(
            settings,
            uri,
            redis_key_prefix=key_prefix,
            memory_search_limit=search_limit,
            memory_min_score=min_score,
        )
        self.settings = settings
        self.keys = KeySchema(settings.redis_key_prefix)
        self._use_client(client, lambda: create_client(settings, uri))
        self._cluster = is_cluster(self.client)
        self.search_limit = settings.memory_search_limit
        self.min_score = settings.memory_min_score
        self.embedder = embedder
        self.hybrid_weight = hybrid_weight
        self._queries = QueryVectors(embedder) if embedder is not None else None
        self.index = SearchIndex(
            self.client,
            quantization=vector_quantization,
            max_document_terms=settings.memory_max_terms_per_document,
            max_query_terms=settings.memory_max_query_terms,
        )
        self.read_stored_sessions = read_stored_sessions
        #: REDIS_WAIT_REPLICAS: memory writes also wait for replicas, in the same round trip.
        self.durability = Durability(self.client, settings, self.keys)
        self._sessions: Any = None
        self._cross: dict[str, CrossSessionMemory] = {}
        kinds = search_kinds or settings.memory_search_kinds
        if kinds not in ("all", "facts", "turns"):
            raise ConfigurationError(f"search_kinds must be 'all', 'facts' or 'turns', got {kinds!r}")
        self.search_kinds = kinds
        generator = generator if generator is not None else settings.memory_generator_model
        if isinstance(generator, str):
            generator = MemoryGenerator(generator)
        self.generator = generator
        # turns are marked kind=turn (facts: kind=fact) once facts can be in the results
        self._kinds_shown = generator is not None or kinds != "all"
        self.facts = FactStore(
            self.client,
            self.keys,
            quantization=vector_quantization,
            max_terms=settings.memory_max_terms_per_document,
        )
        self._generation: GenerationRuntime | None = None
        if generator is not None:
            self._generation = GenerationRuntime(
                client=self.client,
                keys=self.keys,
                generator=generator,
                embedder=embedder,
                background=generator_worker,
                ttl_hours=settings.history_ttl_hours,
                quantization=vector_quantization,
                max_terms=settings.memory_max_terms_per_document,
                cursor_ttl_hours=settings.history_ttl_hours,
            )

    def cross_session(self, app_name: str) -> CrossSessionMemory:
        """The app's :class:`CrossSessionMemory`, sharing this service's client and index."""
        cs = self._cross.get(app_name)
        if cs is None:
            cs = CrossSessionMemory(
                self.client, self.keys, self.settings, app_name, index=self.index, embedder=self.embedder
            )
            self._cross[app_name] = cs
        return cs

    # -- writes ------------------------------------------------------------------
    async def _put_many(
        self, ik: MemoryIndexKeys, docs: Sequence[_Doc], ttl: int, mode: str = "replace"
    ) -> list[bool]:
        """Index documents, pipelined (one round trip); per document: stored (True) or skipped.

        ``mode``: ``replace``, ``skip`` (keep live stored or deleted docs) or ``refresh``
        (re-index the terms of live stored docs, nothing else).
        """
        if not docs:
            return []
        vectors: list[bytes] = [b""] * len(docs)
        if self.embedder is not None and mode != "refresh":
            todo = list(range(len(docs)))
            if mode == "skip":  # re-ingesting a session: embed only what the script will store
                todo = [n for n, new in zip(todo, await self._storable(ik, docs)) if new]
            if todo:
                embedded = await self.embedder.embed([docs[n].vector_text or docs[n].body for n in todo])
                for n, v in zip(todo, embedded):
                    vectors[n] = pack(v)
        kw: dict[str, Any] = {"skip_existing": mode == "skip", "refresh": mode == "refresh"}
        if self.durability.enabled:  # the puts, then the replica wait, on one connection
            recorder = Recorder(self.index._put)
            for d, vec in zip(docs, vectors):
                await self._put_doc(ik, d, vec, ttl, kw, client=recorder)
            where = f"indexing {len(docs)} memories"
            replies = await self.durability.execute(recorder.calls, route_key=ik.stats, what=where)
            failed = [r for r in replies if isinstance(r, ResponseError)]
            if failed:  # as below: each document's script is all or nothing
                ok = [not isinstance(r, Exception) and int(r) == 1 for r in replies]
                written = tuple(d.doc_id for d, new in zip(docs, ok) if new)
                raise partial_write_error(failed[0], where, written) from failed[0]
            return [int(r) == 1 for r in replies]
        if self._cluster:  # redis-py's cluster pipeline refuses EVALSHA; one slot, so in order
            done: list[bool] = []
            for d, vec in zip(docs, vectors):
                try:
                    done.append(bool(await self._put_doc(ik, d, vec, ttl, kw)))
                except RedisOutOfMemoryError as exc:
                    written = tuple(x.doc_id for x, new in zip(docs, done) if new)
                    raise partial_write_error(exc, f"indexing {len(docs)} memories", written) from exc
            return done
        pipe = self.client.pipeline(transaction=False)
        for d, vec in zip(docs, vectors):
            await self._put_doc(ik, d, vec, ttl, kw, client=pipe)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except ResponseError as exc:
            raise write_error(exc, f"indexing {len(docs)} memories") from exc
        failed = [r for r in replies if isinstance(r, ResponseError)]
        if failed:
            # each document's script is all or nothing; the others of the batch may have been stored
            ok = [not isinstance(r, Exception) and int(r) == 1 for r in replies]
            written = tuple(d.doc_id for d, new in zip(docs, ok) if new)
            where = f"indexing {len(docs)} memories"
            raise partial_write_error(failed[0], where, written) from failed[0]
        return [int(r) == 1 for r in replies]

    async def _put_doc(
        self, ik: MemoryIndexKeys, d: _Doc, vec: bytes, ttl: int, kw: dict[str, Any], *, client: Any = None
    ) -> bool | None:
        """Index one document: queued on ``client`` (a pipeline or a durability recorder, None
        returned) or, without one, sent at once (stored: True)."""
        return await self.index.put(
            ik,
            d.doc_id,
            d.body,
            d.payload,
            vector=vec,
            fields=d.fields,
            context=d.context,
            client=client,
            ttl_ms=d.ttl or ttl,
            **kw,
        )

    async def _storable(self, ik: MemoryIndexKeys, docs: Sequence[_Doc]) -> list[bool]:
        """Which docs a 'skip' put would store (not live, not deleted), read in one round trip.

        A doc that becomes storable in between (expired meanwhile) is stored without a vector, so
        only full text finds it.
        """
        pipe = self.client.pipeline(transaction=False)
        for d in docs:
            pipe.zscore(ik.expiry, d.doc_id)
            pipe.hget(ik.deleted, d.doc_id)
        res = await pipe.execute()
        t = now_ms()
        return [
            not (
                (res[2 * n] is not None and float(res[2 * n]) > t)
                or (res[2 * n + 1] is not None and float(text(res[2 * n + 1])) > t)
            )
            for n in range(len(docs))
        ]

    async def _stored_events(self, session: Session) -> list[Event] | None:
        """The session's events as a RedisSessionService on this client and prefix stored them."""
        if self._sessions is None:
            from ..sessions._service import RedisSessionService

            self._sessions = RedisSessionService(client=self.client, settings=self.settings)
        try:
            stored = await self._sessions.get_session(
                app_name=session.app_name, user_id=session.user_id, session_id=session.id
            )
        except (CorruptedDataError, ValueError) as exc:
            logger.warning("add_session_to_memory: stored session %r not readable (%s)", session.id, exc)
            return None
        return None if stored is None else list(stored.events)

    @override
    async def add_session_to_memory(self, session: Session) -> None:
        """Ingest the session's events; re-adding a session only adds new events.

        With ``read_stored_sessions`` (default), a session stored under this service's Redis and key
        prefix (a :class:`~adk_redis.RedisSessionService` sharing them) is ingested from storage:
        its stored events, plus any of the object's events not stored, so a stale object (the one
        ``create_session`` returned, after a Runner appended through its own copy) still ingests
        every event.  Otherwise only the object's events are known: adding a session without any
        text event logs a warning.
        """
        events: list[Event] = list(session.events)
        if self.read_stored_sessions:
            stored = await self._stored_events(session)
            if stored is not None:
                seen = {e.id for e in stored if e.id}
                events = stored + [e for e in events if not e.id or e.id not in seen]
        if not any(content_text(e.content).strip() for e in events):
            logger.warning(
                "add_session_to_memory: session %r of user %r has no text events, nothing to index "
                "(a stale session object? pass the session returned by get_session)",
                session.id,
                session.user_id,
            )
            return
        await self.add_events_to_memory(
            app_name=session.app_name, user_id=session.user_id, events=events, session_id=session.id
        )

    @override
    async def add_events_to_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        events: Sequence[Event],
        session_id: str | None = None,
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        """Ingest events (idempotent per event id; deleted events are not re-ingested).

        ``custom_metadata``: ``ttl`` (seconds or ``"3600s"``, Memory Bank's spelling) or ``ttl_hours``
        overrides ``HISTORY_TTL_HOURS``; an invalid value raises ValueError naming it.
        """
        sid = session_id or UNKNOWN_SESSION_ID
        turns: list[tuple[Event, str]] = []
        for event in events:
            body = content_text(event.content)
            if body.strip() and event.content is not None:
                turns.append((event, body))
        docs: list[_Doc] = []
        for n, (event, body) in enumerate(turns):
            doc_id, eid = history_ids(sid, event)
            # the exchange a turn belongs to: the adjacent text turns of another author
            near = [m for m in (n - 1, n + 1) if 0 <= m < len(turns) and turns[m][0].author != event.author]
            context = tuple(turns[m][1] for m in near)
            payload = history_payload(event, sid, eid, [history_ids(sid, turns[m][0])[0] for m in near])
            # embedded: the turn with its speaker, after the other party's previous turn
            prev = turns[n - 1] if n and turns[n - 1][0].author != event.author else None
            vector_text = f"{event.author}: {body}" if event.author else body
            if prev is not None:
                vector_text = f"{prev[0].author}: {prev[1]}\n{vector_text}"
            docs.append(
                _Doc(doc_id, body, payload, _fields(event.author, event.timestamp), context, vector_text)
            )
        ttl = _ttl_override(self.settings.history_ttl_hours, custom_metadata)
        ik = self.keys.user_memory_index(app_name, str(user_id))
        stored = await self._put_many(ik, docs, ttl, mode="skip")
        # a turn indexed earlier gains the words of its new successor (re-ingestion after each turn)
        refresh = [
            docs[n]
            for n in range(len(docs) - 1)
            if not stored[n] and stored[n + 1] and turns[n][0].author != turns[n + 1][0].author
        ]
        if refresh:
            try:
                await self._put_many(ik, refresh, ttl, mode="refresh")
            except RedisOutOfMemoryError as exc:  # the new documents are stored; name them too
                written = tuple(d.doc_id for d, new in zip(docs, stored) if new)
                raise partial_write_error(exc, f"indexing {len(docs)} memories", written) from exc
        if self._generation is not None and turns:
            job_events = [
                JobEvent(history_ids(sid, e)[1], e.author or "", body, e.timestamp) for e, body in turns
            ]
            jobs = await self._generation.enqueue_events(app_name, str(user_id), sid, job_events)
            if (custom_metadata or {}).get("wait_for_completion"):
                await self._generation.wait(jobs, timeout=self._generation.generator.job_deadline())

    @override
    async def add_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        memories: Sequence[MemoryEntry],
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        """Store explicit memories (an entry with an existing ``id`` replaces it).

        TTL ``MEMORY_TTL_HOURS`` unless the entry's ``custom_metadata`` or the call's sets ``ttl``
        (seconds or ``"3600s"``, Memory Bank's spelling) or ``ttl_hours`` (the entry's wins); these keys
        are not stored with the entry.  Raises ValueError naming the key and value of an invalid TTL
        (nothing is written), or for a caller id of the form of a generated one (``h:...``).
        With a generator, ``custom_metadata={"consolidate": True}`` consolidates them with the user's
        facts instead (topic: ``custom_metadata["topic"]``; ``"wait_for_completion": True`` waits).
        """
        meta = custom_metadata or {}
        if meta.get("consolidate") and self._generation is not None:
            topic = str(meta.get("topic") or self._generation.generator.topics[0].label)
            facts = [(content_text(e.content), topic) for e in memories if content_text(e.content).strip()]
            jobs = await self._generation.enqueue_facts(app_name, str(user_id), facts)
            if meta.get("wait_for_completion"):
                await self._generation.wait(jobs, timeout=self._generation.generator.job_deadline())
            return
        docs: list[_Doc] = []
        for entry in memories:
            body = content_text(entry.content)
            mid = check_caller_id(entry.id) if entry.id is not None else uuid.uuid4().hex
            ts: float | None = None
            if entry.timestamp:
                try:
                    ts = datetime.fromisoformat(entry.timestamp).timestamp()
                except ValueError:
                    ts = None
            payload = memory_payload(entry, mid, ts)
            own_ttl = _ttl_override(self.settings.memory_ttl_hours, entry.custom_metadata, custom_metadata)
            docs.append(_Doc(memory_doc_id(mid), body, payload, _fields(entry.author, ts), ttl=own_ttl))
        ttl = _ttl_override(self.settings.memory_ttl_hours, custom_metadata)
        await self._put_many(self.keys.user_memory_index(app_name, str(user_id)), docs, ttl)

    @override
    async def delete_memory(self, *, app_name: str, user_id: str, memory_id: str | None = None) -> None:
        """Delete one memory by the id :meth:`search_memory` returned (ADK's method: returns None).

        An id that matches nothing is logged (WARNING, naming it); :meth:`delete_memories` returns
        how many were deleted.  Deleted history events are not re-ingested by later
        :meth:`add_session_to_memory` calls (tombstone kept ``HISTORY_TTL_HOURS``).
        Knowledge ids are refused: shared knowledge is not a user's to delete.
        """
        if not memory_id:
            return
        await self.delete_memories(app_name=app_name, user_id=user_id, memory_ids=[memory_id])

    async def delete_memories(self, *, app_name: str, user_id: str | int, memory_ids: Sequence[str]) -> int:
        """Delete memories by the ids :meth:`search_memory` / :meth:`list_memories` returned.

        Idempotent.  Returns how many existed; each id that matched nothing is logged (WARNING).
        """
        uid = str(user_id)
        deleted = 0
        for public in memory_ids:
            if await self._delete_one(app_name, uid, public):
                deleted += 1
            else:
                logger.warning(
                    "delete_memory: no memory %r of user %r in app %r (nothing deleted)",
                    public,
                    uid,
                    app_name,
                )
        return deleted

    async def _index_delete(self, ik: MemoryIndexKeys, doc: str, tomb: int) -> bool:
        """``index.delete``; with ``REDIS_WAIT_REPLICAS``, with the replica wait in the same round trip."""
        if not self.durability.enabled:
            return await self.index.delete(ik, doc, tombstone_ttl_ms=tomb)
        recorder = Recorder(self.index._delete)
        await self.index.delete(ik, doc, tombstone_ttl_ms=tomb, client=recorder)
        what = f"delete of memory {doc!r}"
        (reply,) = await self.durability.execute(recorder.calls, route_key=ik.stats, what=what)
        if isinstance(reply, Exception):
            raise reply
        return int(reply) == 1

    async def _delete_one(self, app_name: str, uid: str, public: str) -> bool:
        if is_fact_id(public):  # an extracted fact: the fact and its revisions
            return await self.facts.erase(app_name, uid, unescape(public[len(FACT_PREFIX) :]))
        doc = doc_id_of(public)
        try:
            ref = parse_id(doc)
        except (ValueError, UnicodeDecodeError):
            return False
        if ref is None:
            return False
        if ref.source == "context":
            return await self.cross_session(app_name).delete_user_context(uid, ref.parts[0])
        if ref.source == "knowledge":
            logger.warning(
                "delete_memory: %r is shared knowledge of app %r, not a user's memory", public, app_name
            )
            return False
        ik = self.keys.user_memory_index(app_name, uid)
        tomb = ttl_ms(self.settings.history_ttl_hours)
        if await self._index_delete(ik, doc, tomb):
            return True
        if ref.source == "memory" and source_of(public) == "memory":  # an id of the 'm:<id>' era
            return await self._index_delete(ik, public, tomb)
        return False

    async def delete_session_memories(self, *, app_name: str, user_id: str | int, session_id: str) -> int:
        """Delete every turn memory ingested from one session; returns how many were deleted.

        Idempotent.  The turns are tombstoned (``HISTORY_TTL_HOURS``): re-ingesting the session does not
        bring them back.  :meth:`RedisSessionService.delete_session` calls this by default
        (``DELETE_MEMORIES_WITH_SESSION``).
        """
        lo, hi = session_range(session_id)
        return await self.index.delete_range(
            self.keys.user_memory_index(app_name, str(user_id)),
            lo,
            hi,
            tombstone_ttl_ms=ttl_ms(self.settings.history_ttl_hours),
        )

    async def list_memories(
        self,
        *,
        app_name: str,
        user_id: str | int,
        kind: Source | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> MemoryPage:
        """A page of the user's live memories in id order (``kind``: ``history``, ``memory`` or
        ``context``; None: all three).  Pass ``next_cursor`` back for the next page.

        Uses the index's own id set (no SCAN).  Raises InvalidCursorError for a cursor of another
        listing, ValueError for a bad ``kind`` or ``limit``.
        """
        if kind is not None and kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS} or None, got {kind!r}")
        if not 1 <= limit <= 1000:
            raise ValueError(f"limit must be from 1 to 1000, got {limit!r}")
        lo, hi = source_range(kind)
        if cursor:
            lo = "(" + _decode_cursor(cursor, kind, lo, hi)
        items, nxt = await self.index.list_range(
            self.keys.user_memory_index(app_name, str(user_id)), lo, hi, limit
        )
        memories: list[MemoryEntry] = []
        for doc, payload in items:
            try:
                memories.append(decode_fact(doc, payload) if is_fact_id(doc) else decode_entry(doc, payload))
            except (CorruptedDataError, ValueError, KeyError) as exc:
                logger.warning("skipping corrupted memory: %s", exc)
        return MemoryPage(memories, _encode_cursor(kind, nxt) if nxt is not None else None)

    async def get_memory(self, *, app_name: str, user_id: str | int, memory_id: str) -> MemoryEntry | None:
        """One live memory of the user by the id search returned, or None."""
        ik = self.keys.user_memory_index(app_name, str(user_id))
        doc = doc_id_of(memory_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.zscore(ik.expiry, doc)
        pipe.hget(ik.docs, doc)
        exp, payload = await pipe.execute()
        if exp is None or payload is None or float(exp) <= now_ms():
            return None
        return decode_fact(doc, text(payload)) if is_fact_id(doc) else decode_entry(doc, text(payload))

    async def forget_user(self, *, app_name: str, user_id: str | int) -> ForgetResult:
        """Erase everything this package stores of (app, user); returns the counts per kind.

        Sessions and their events, ``user:`` state, memories (turns, explicit memories), user context,
        session history, design-API owner records and failed-access counters, extracted facts with their
        revisions and queued generation jobs (:func:`~adk_redis.memory.erase_user_facts`).  A concurrent
        write of the user lands wholly before the erasure (erased) or after it (kept); see
        :mod:`adk_redis.memory._erase`.
        Agent memory is keyed by agent, not by user, and is kept.
        """
        facts = await erase_user_facts(self.client, self.keys, app_name, str(user_id))
        result = await erase_user(self.client, self.keys, app_name, str(user_id), cluster=self._cluster)
        if self.durability.enabled:  # REDIS_WAIT_REPLICAS: the erasure confirmed on replicas too
            uid = str(user_id)
            await self.durability.confirm(
                self.keys.user_memory_index(app_name, uid).stats,
                self.keys.app_index(app_name),
                self.keys.memory_registry(app_name, "users"),
                self.keys.security_sessions(app_name),
                self.keys.security_flagged(),
                what=f"forget_user of {uid!r} in app {app_name!r}",
            )
        return dataclasses.replace(result, facts=facts["facts"])

    async def cleanup(self, *, app_name: str, user_id: str | int | None = None) -> int:
        """Prune expired entries of the user's index (and the app's knowledge); returns the count."""
        removed = await self.index.cleanup(self.keys.knowledge_index(app_name))
        if user_id is not None:
            removed += await self.index.cleanup(self.keys.user_memory_index(app_name, str(user_id)))
        return removed

    # -- search ------------------------------------------------------------------
    def _bm25_specs(self, app_name: str, user_id: str) -> list[tuple[MemoryIndexKeys, str]]:
        specs = [(self.keys.user_memory_index(app_name, user_id), _KIND_FILTERS[self.search_kinds])]
        if self.search_kinds == "all":
            specs.append((self.keys.knowledge_index(app_name), knowledge_filter()))
        return specs

    async def _bm25(
        self, app_name: str, user_id: str, terms: list[str], limit: int, *, context: int | None = None
    ) -> list[Hit]:
        specs = self._bm25_specs(app_name, user_id)
        if not self._cluster:
            return await self.index.search(specs, terms, limit, context=context)
        hits: list[Hit] = []
        for n, spec in enumerate(specs):
            found = await self.index.search([spec], terms, limit, context=context)
            hits += [Hit(n + 1, h.doc_id, h.score, h.payload, h.context) for h in found]
        hits.sort(key=lambda h: (-h.score, h.index))  # stable: ties keep each index's insertion order
        return hits[:limit]

    async def _hybrid(
        self, app_name: str, user_id: str, query: str, terms: list[str], limit: int = 0
    ) -> list[Hit]:
        """BM25 and cosine rankings (VSIM on Redis 8, else client side), score-fused (:func:`fuse`)."""
        assert self._queries is not None
        pool = max(_HYBRID_POOL, self.search_limit)
        specs = [self.keys.user_memory_index(app_name, user_id), self.keys.knowledge_index(app_name)]
        vsets = await self.index.vector_sets(specs[0])
        # the query embeds while BM25 runs and (without vector sets) the stored vectors are read
        vector = asyncio.ensure_future(self._queries.get(query))
        stored = None if vsets else asyncio.ensure_future(fetch_vectors(self.client, specs))
        try:
            lexical = await self._bm25(app_name, user_id, terms, pool) if terms else []
            qv = await vector
            if stored is None:
                ranked = await rank(self.client, specs, qv, pool, vector_sets=True)
            else:
                ranked = rank_fetched(qv, await stored, pool)
        except BaseException:
            for task in (vector, stored):
                if task is not None:
                    task.cancel()
            raise
        by_key = {(h.index, h.doc_id): h for h in lexical}
        fused = fuse(
            [((h.index, h.doc_id), h.score) for h in lexical],
            [((n, doc), score) for score, n, doc in ranked],
            self.hybrid_weight,
        )
        # documents only the vectors found: their JSON, if still alive (expiry is not in the vectors)
        head = fused if self.search_kinds != "all" else fused[: (limit or self.search_limit) + 10]
        missing = [(0.0, n, doc, specs[n - 1]) for (n, doc), _ in head if (n, doc) not in by_key]
        if missing:
            for (_, n, doc, _), payload in zip(missing, await self._alive_payloads(missing)):
                if payload:
                    by_key[(n, doc)] = Hit(n, doc, 0.0, payload)
        hits = [
            Hit(key[0], key[1], score, by_key[key].payload, by_key[key].context)
            for key, score in head
            if key in by_key
            and (
                self.search_kinds == "all"
                or (key[0] == 1 and key[1].startswith(_KIND_FILTERS[self.search_kinds]))
            )
        ]
        return hits[: limit or self.search_limit]

    async def _alive_payloads(self, items: list[tuple[float, int, str, MemoryIndexKeys]]) -> list[str]:
        pipe = self.client.pipeline(transaction=False)
        for _, _, doc, ik in items:
            pipe.zscore(ik.expiry, doc)
            pipe.hget(ik.docs, doc)
        res = await pipe.execute()
        t = now_ms()
        out: list[str] = []
        for i in range(0, len(res), 2):
            exp, payload = res[i], res[i + 1]
            out.append(text(payload) if payload is not None and exp is not None and float(exp) > t else "")
        return out

    @override
    async def search_memory(self, *, app_name: str, user_id: str, query: str) -> SearchMemoryResponse:
        """The ``search_limit`` most relevant memories of (app, user) (plus app knowledge), best first,
        each with ``custom_metadata["score"]``, none below ``min_score``.

        Full text: every hit contains a query term in its own text (or speaker / month-year fields).
        """
        uid = str(user_id)
        terms = query_terms(query or "")
        late: set[tuple[int, str]] = set()  # hits the script left the context of
        if self.embedder is None:
            if not terms:
                return SearchMemoryResponse()
            # facts and turns: the pool is re-ranked and collapsed here; the script returns the JSON and
            # context of the first hits (most of those kept), the rest is read for the hits kept only
            both = self.search_kinds == "all"
            ctx_n = self.search_limit + self.search_limit // 2 if both else None
            hits = await self._bm25(app_name, uid, terms, self._pool(), context=ctx_n)
            if both:
                late = {(h.index, h.doc_id) for h in hits[ctx_n:]}
                hits = boost_sources(hits)
        else:
            if not (query or "").strip():
                return SearchMemoryResponse()
            hits = await self._hybrid(app_name, uid, query, terms, self._pool())
        if self.search_kinds == "all":
            hits = collapse(hits, self.search_limit)
            if self.embedder is None:
                hits = [h for h in hits if h.score >= self.min_score]
                if any((h.index, h.doc_id) in late for h in hits):
                    hits = await self.index.complete(
                        hits, [ik for ik, _ in self._bm25_specs(app_name, uid)], late
                    )
        memories: list[MemoryEntry] = []
        for hit in hits:
            if hit.score < self.min_score:
                continue
            try:
                if hit.index == 1 and is_fact_id(hit.doc_id):
                    entry = decode_fact(hit.doc_id, hit.payload)
                else:
                    entry = decode_entry(hit.doc_id, hit.payload)
            except (CorruptedDataError, ValueError, KeyError) as exc:
                logger.warning("skipping corrupted memory: %s", exc)
                continue
            if self.embedder is None and is_legacy_history(hit.payload) and not _own_match(entry, terms):
                continue  # indexed before the hit rule: it matched through the adjacent turns only
            if self._kinds_shown and source_of(hit.doc_id) == "history":
                entry.custom_metadata["kind"] = "turn"
            entry.custom_metadata["score"] = hit.score
            context = context_items(hit.context)
            if context:
                entry.custom_metadata["context"] = context
            memories.append(entry)
        return SearchMemoryResponse(memories=memories)

    def _pool(self) -> int:
        """Hits asked of the index: three times the limit when facts and turns are ranked together (a
        fact and its source turn raise each other's rank, :func:`~adk_redis.memory._facts.boost_sources`,
        and a turn a higher-ranked fact came from is left out, :func:`~adk_redis.memory._facts.collapse`)."""
        return self.search_limit * 3 if self.search_kinds == "all" else self.search_limit

    # -- memory generation -------------------------------------------------------
    async def flush(self, *, timeout: float | None = 30.0) -> bool:
        """Wait until every generation job queued by this service is done or dead-lettered.

        Returns False when ``timeout`` (seconds) passed first; True without a generator.
        """
        return True if self._generation is None else await self._generation.flush(timeout)

    async def list_revisions(self, *, app_name: str, user_id: str, memory_id: str) -> list[dict[str, Any]]:
        """A fact's revisions, oldest first: ``rev``, ``action``, ``text``, ``topic``, ``sid``, ``eids``,
        ``job``, ``ts`` (``memory_id``: the fact's ``f:<id>`` from :meth:`search_memory`)."""
        fid = memory_id[len(FACT_PREFIX) :] if is_fact_id(memory_id) else memory_id
        return await self.facts.revisions(app_name, str(user_id), unescape(fid))

    async def rollback(self, *, app_name: str, user_id: str, memory_id: str, revision: int) -> None:
        """Restore a fact to the text of ``revision`` (appends a ``RESTORE`` revision; a deleted fact
        comes back).

        Raises:
          ValueError: no such revision (or it is a deletion).
        """
        uid = str(user_id)
        fid = unescape(memory_id[len(FACT_PREFIX) :] if is_fact_id(memory_id) else memory_id)
        revs = await self.facts.revisions(app_name, uid, fid)
        target = next((r for r in revs if r.get("rev") == revision), None)
        if target is None or target.get("action") == "DELETE":
            raise ValueError(f"fact {memory_id!r} has no revision {revision} to restore")
        action = FactAction(
            "RESTORE",
            str(target["text"]),
            str(target.get("topic") or ""),
            fact_id=fid,
            session_id=str(target.get("sid") or ""),
            event_ids=tuple(target.get("eids") or ()),
        )
        if self.embedder is not None:
            action.vector = pack((await self.embedder.embed([action.text]))[0])
        ik = self.keys.user_memory_index(app_name, uid)
        await self.facts.apply(
            app_name,
            uid,
            [action],
            job_id="",
            ttl_ms=ttl_ms(self.settings.history_ttl_hours),
            vector_sets=self.embedder is not None and await self.index.vector_sets(ik),
        )

    async def list_facts(self, *, app_name: str, user_id: str) -> list[MemoryEntry]:
        """Every live fact of (app, user) as :class:`MemoryEntry`, in id order (to preload a prompt).

        Read from the index's id set (``f:`` range, a page of 500 per round trip; no SCAN).
        """
        ik = self.keys.user_memory_index(app_name, str(user_id))
        out: list[MemoryEntry] = []
        lo, hi = f"[{FACT_PREFIX}", f"({FACT_PREFIX[:-1]};"
        while True:
            items, nxt = await self.index.list_range(ik, lo, hi, 500)
            for doc, payload in items:
                try:
                    out.append(decode_fact(doc, payload))
                except (ValueError, KeyError) as exc:
                    logger.warning("skipping corrupted fact %r: %s", doc, exc)
            if nxt is None:
                return out
            lo = "(" + nxt

    async def generation_stats(self) -> dict[str, Any]:
        """Generation counters (jobs queued/done/retried/dead, facts created/updated/deleted, model
        calls, latency ms, tokens) and the queue (``queued_now``, ``pending``, ``dead_now``)."""
        return await generation_stats(self.client, self.keys)

    # -- lifecycle: ping, close, async with (RedisClientOwner) -----------------------
    async def close(self) -> None:
        """Stop the background generation worker; close the client if this service created it."""
        if self._generation is not None:
            await self._generation.close()
        await super().close()


# OpenTelemetry spans/metrics (adk_redis.telemetry); a no-op check while no SDK is configured.
telemetry.traced_methods(
    RedisMemoryService,
    "memory",
    ("add_session_to_memory", "add_events_to_memory", "add_memory", "delete_memory", "search_memory"),
)
