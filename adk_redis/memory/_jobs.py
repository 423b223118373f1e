"""Durable memory-generation jobs: a Redis Stream, a consumer group, workers.

Enqueueing (:class:`GenerationQueue`): a job carries one session's events newer than the last
event enqueued for that session (a per-session cursor in the user's fact keys) plus a few earlier
turns as context, at most ``max_events_per_job`` new events per job (more are split).  The job is
``XADD``-ed to ``<prefix>:memory:gen:jobs`` (consumer group ``generators``).

Working (:class:`GenerationWorker`): ``XAUTOCLAIM`` takes over jobs idle longer than the visibility
timeout (a worker died), else ``XREADGROUP``.  A job extracts facts (no lock), then takes the
user's lock (``SET NX PX`` with a token), consolidates and applies every action in one Lua call
that checks the token and marks the job done (:class:`~adk_redis.memory._facts.FactStore`); then
``XACK`` + ``XDEL``.  A job seen again (reclaimed after its worker died past the apply) finds its
done mark and is only acknowledged.  Model errors, timeouts and unusable answers are retried with
exponential backoff; after ``max_attempts`` the job goes to ``<prefix>:memory:gen:dead``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .. import telemetry
from .._core.codec import text as as_text
from ..keys import KeySchema, escape
from ._facts import FACT_PREFIX, FactAction, FactStore, _stored, is_fact_id, month
from ._generator import Existing, Fact, GenerationError, JobEvent, MemoryGenerator, ModelUsage
from ._search import SearchIndex, now_ms
from ._vectors import rank
from .embeddings import Embedder, pack

__all__ = ["GROUP", "GenerationQueue", "GenerationRuntime", "GenerationWorker", "generation_stats"]

logger = logging.getLogger("adk_redis.memory.generation")
_otel: tuple[Any, dict[str, Any]] | None = None


def _instruments() -> dict[str, Any] | None:
    """Generation counters on the meter of :func:`adk_redis.telemetry.instrument` (None when off)."""
    global _otel
    if not telemetry.enabled():
        return None
    inst = telemetry._inst
    if _otel is None or _otel[0] is not inst:
        m = inst.meter
        _otel = (
            inst,
            {
                "jobs": m.create_counter(
                    "adk_redis.generation.jobs", description="generation jobs by outcome"
                ),
                "facts": m.create_counter(
                    "adk_redis.generation.facts", description="facts changed by action"
                ),
                "tokens": m.create_counter("adk_redis.generation.tokens", description="model tokens by kind"),
                "model": m.create_histogram(
                    "adk_redis.generation.model_latency", unit="s", description="model time per job attempt"
                ),
            },
        )
    return _otel[1]


GROUP = "generators"
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: cursor HASH   ARGV: session field, expected value ('' = absent), new value, ttl ms
# -> 1 set, 0 changed meanwhile
_CURSOR_CAS = """
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


class _Busy(Exception):
    """The user's lock is held by another worker: leave the job pending."""


def _event_dict(e: JobEvent, max_chars: int) -> dict[str, Any]:
    return {"id": e.event_id, "a": e.author, "t": e.text[:max_chars], "ts": e.ts, "c": e.context}


def _event_of(d: Mapping[str, Any]) -> JobEvent:
    return JobEvent(str(d["id"]), str(d.get("a") or ""), str(d.get("t") or ""), d.get("ts"), bool(d.get("c")))


async def _ensure_group(client: Any, stream: str) -> None:
    try:
        await client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _sources(said: Mapping[str, JobEvent], event_ids: Sequence[str]) -> dict[str, Any]:
    """A fact's source turns: their text (searchable context), speakers and month (fields), time."""
    src = [said[e] for e in event_ids if e in said]
    times = [e.ts for e in src if e.ts is not None]
    out: dict[str, Any] = {"context": tuple(e.text for e in src)}
    out["fields"] = tuple(dict.fromkeys([e.author for e in src if e.author] + [month(t) for t in times]))
    if times:
        out["ts"] = max(times)
    return out


class GenerationQueue:
    """The producer side: per-session cursors and ``XADD``."""

    def __init__(
        self, client: Any, keys: KeySchema, generator: MemoryGenerator, *, cursor_ttl_hours: float = 720.0
    ) -> None:
        self.client = client
        self.cursor_ttl_ms = int(cursor_ttl_hours * 3600 * 1000)
        self.keys = keys
        self.generator = generator
        self._group_ready = False
        self._cas = client.register_script(_CURSOR_CAS)

    async def _ready(self) -> None:
        if not self._group_ready:
            await _ensure_group(self.client, self.keys.generation_jobs())
            self._group_ready = True

    async def _add(self, jobs: Sequence[dict[str, Any]]) -> list[str]:
        await self._ready()
        pipe = self.client.pipeline(transaction=False)
        for job in jobs:
            pipe.xadd(self.keys.generation_jobs(), {"job": json.dumps(job, ensure_ascii=False)})
        pipe.hincrby(self.keys.generation_stats(), "jobs_queued", len(jobs))
        await pipe.execute()
        return [str(j["id"]) for j in jobs]

    async def enqueue_events(
        self, app_name: str, user_id: str, session_id: str, events: Sequence[JobEvent]
    ) -> list[str]:
        """Queue the events newer than the session's cursor (split into jobs); returns job ids.

        The cursor moves by compare-and-set, so two concurrent calls for one session never queue
        the same events twice (one of them re-reads the cursor).
        """
        if not events:
            return []
        fk = self.keys.memory_facts(app_name, user_id)
        for _ in range(5):
            raw = await self.client.hget(fk.cursor, escape(session_id))
            planned = self._plan(app_name, user_id, session_id, events, raw)
            if planned is None:
                return []
            jobs, new_cursor = planned
            args = [escape(session_id), "" if raw is None else as_text(raw), new_cursor, self.cursor_ttl_ms]
            if int(await self._cas(keys=[fk.cursor], args=args)):
                return await self._add(jobs)
        raise RuntimeError(f"the generation cursor of session {session_id!r} kept changing")

    def _plan(
        self, app_name: str, user_id: str, session_id: str, events: Sequence[JobEvent], raw: Any
    ) -> tuple[list[dict[str, Any]], str] | None:
        """The jobs for the events after cursor ``raw``, and the new cursor (None: nothing new)."""
        start = 0
        if raw is not None:
            cur = json.loads(as_text(raw))
            pos = next((n for n, e in enumerate(events) if e.event_id == cur.get("eid")), None)
            if pos is not None:
                start = pos + 1
            else:
                ts = cur.get("ts")
                start = next(
                    (n for n, e in enumerate(events) if ts is None or (e.ts is not None and e.ts > ts)),
                    len(events),
                )
        new = list(events[start:])
        if not new:
            return None
        g = self.generator
        jobs: list[dict[str, Any]] = []
        for off in range(0, len(new), g.max_events_per_job):
            chunk = new[off : off + g.max_events_per_job]
            first = start + off
            ctx = [
                JobEvent(e.event_id, e.author, e.text, e.ts, True)
                for e in events[max(0, first - g.context_events) : first]
            ]
            jobs.append(
                {
                    "id": uuid.uuid4().hex,
                    "kind": "events",
                    "app": app_name,
                    "user": user_id,
                    "sid": session_id,
                    "events": [_event_dict(e, g.max_event_chars) for e in ctx + chunk],
                    "queued": now_ms(),
                }
            )
        last = new[-1]
        return jobs, json.dumps({"eid": last.event_id, "ts": last.ts})

    async def enqueue_facts(
        self, app_name: str, user_id: str, facts: Sequence[tuple[str, str]], session_id: str = ""
    ) -> list[str]:
        """Queue explicit memories (text, topic) for consolidation only (no extraction)."""
        facts = list(facts)[: self.generator.max_facts_per_job]
        if not facts:
            return []
        job = {
            "id": uuid.uuid4().hex,
            "kind": "facts",
            "app": app_name,
            "user": user_id,
            "sid": session_id,
            "facts": [{"text": t, "topic": p} for t, p in facts],
            "queued": now_ms(),
        }
        return await self._add([job])


@dataclass(frozen=True)
class JobResult:
    status: str  # done, duplicate, discarded
    created: int = 0
    updated: int = 0
    deleted: int = 0


class GenerationWorker:
    """Consumes generation jobs (any number of workers, in any number of processes).

    Args:
      visibility_timeout: seconds a job may stay unacknowledged before another worker reclaims it.
      lock_ttl: seconds the per-user lock lives (default: the model timeout + 30).
      ttl_hours: lifetime of facts and their revisions after their last change (the services pass
        ``HISTORY_TTL_HOURS``, as for turns).
    """

    def __init__(
        self,
        *,
        client: Any,
        keys: KeySchema,
        generator: MemoryGenerator,
        embedder: Embedder | None = None,
        consumer: str | None = None,
        visibility_timeout: float = 60.0,
        lock_ttl: float | None = None,
        ttl_hours: float = 72.0,
        quantization: str = "Q8",
        max_terms: int = 1000,
    ) -> None:
        self.client = client
        self.keys = keys
        self.generator = generator
        self.embedder = embedder
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.visibility_ms = int(visibility_timeout * 1000)
        self.lock_ms = int((lock_ttl if lock_ttl is not None else generator.timeout + 30) * 1000)
        self.ttl_ms = int(ttl_hours * 3600 * 1000)
        self.index = SearchIndex(client, quantization=quantization, max_document_terms=max_terms)
        self.store = FactStore(client, keys, quantization=quantization, max_terms=max_terms)
        self._release = client.register_script(_RELEASE)
        self._group_ready = False
        self.processed = 0
        self.current: str | None = None  # the job being handled (its stats may still be pending)
        self._next_claim = 0.0

    async def leave(self) -> None:
        """Remove this worker's consumer from the group when it holds no pending job."""
        with contextlib.suppress(ResponseError, *_TRANSIENT):
            mine = await self.client.xpending_range(
                self.stream, GROUP, "-", "+", 1, consumername=self.consumer
            )
            if not mine:
                await self.client.xgroup_delconsumer(self.stream, GROUP, self.consumer)

    @property
    def stream(self) -> str:
        return self.keys.generation_jobs()

    async def _stat(self, **counts: float) -> None:
        otel = _instruments() or {}
        for name, value in counts.items() if otel else ():
            if not value:
                continue
            if name.startswith("jobs_"):
                otel["jobs"].add(int(value), {"adk_redis.outcome": name[5:]})
            elif name.startswith("facts_"):
                otel["facts"].add(int(value), {"adk_redis.action": name[6:]})
            elif name.endswith("_tokens"):
                otel["tokens"].add(int(value), {"adk_redis.kind": name[: -len("_tokens")]})
            elif name == "model_ms":
                otel["model"].record(float(value) / 1000)
        pipe = self.client.pipeline(transaction=False)
        for name, value in counts.items():
            if value:
                if isinstance(value, float):
                    pipe.hincrbyfloat(self.keys.generation_stats(), name, value)
                else:
                    pipe.hincrby(self.keys.generation_stats(), name, int(value))
        await pipe.execute()

    # -- the loop ------------------------------------------------------------------
    async def step(self, block_ms: int = 1000) -> int:
        """Handle at most one job (a reclaimed one first); returns the number handled."""
        if not self._group_ready:
            await _ensure_group(self.client, self.stream)
            self._group_ready = True
        entries: list[Any] = []
        now = time.monotonic()
        if now >= self._next_claim:  # reclaiming is checked at most every 1 s (and whenever idle)
            claimed = await self.client.xautoclaim(
                self.stream, GROUP, self.consumer, self.visibility_ms, start_id="0-0", count=1
            )
            entries = [e for e in (claimed[1] if claimed else []) if e and e[1]]
            self._next_claim = now + (0.0 if entries else 1.0)
        if entries:
            await self._stat(jobs_reclaimed=len(entries))
        else:
            reply = await self.client.xreadgroup(
                GROUP, self.consumer, {self.stream: ">"}, count=1, block=block_ms or None
            )
            entries = [e for _, batch in (reply or []) for e in batch]
            if not entries:
                self._next_claim = 0.0
        for entry_id, fields in entries:
            await self.handle(as_text(entry_id), fields)
        return len(entries)

    async def run(
        self,
        stop: asyncio.Event | None = None,
        *,
        block_ms: int = 1000,
        max_jobs: int | None = None,
        idle_exit: float | None = None,
    ) -> int:
        """Work until ``stop`` is set (or cancelled), ``max_jobs`` were handled or nothing came for
        ``idle_exit`` seconds; Redis outages are waited out.  Returns the jobs handled."""
        delay = 0.2
        handled = 0
        idle_since = time.monotonic()
        while stop is None or not stop.is_set():
            if max_jobs is not None and handled >= max_jobs:
                break
            if idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                break
            try:
                n = await self.step(block_ms)
                handled += n
                if n:
                    idle_since = time.monotonic()
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except _TRANSIENT as exc:
                logger.warning("memory worker %s: Redis unavailable (%s), retrying", self.consumer, exc)
                self._group_ready = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except ResponseError as exc:
                if "NOGROUP" in str(exc) or "UNBLOCKED" in str(exc):
                    self._group_ready = False
                    continue
                logger.exception("memory worker %s: unexpected Redis error", self.consumer)
                await asyncio.sleep(delay)
        return handled

    # -- one job -------------------------------------------------------------------
    async def handle(self, entry_id: str, fields: Mapping[Any, Any]) -> str:
        """Run one stream entry with retries; acknowledge it when done or dead-lettered."""
        raw = as_text(fields.get(b"job", fields.get("job", b"")))
        try:
            job = json.loads(raw)
            str(job["id"]), str(job["app"]), str(job["user"])
        except (ValueError, KeyError, TypeError) as exc:
            await self._dead(entry_id, raw, None, f"unreadable job: {exc}", 0)
            return "dead"
        self.current = str(job["id"])
        try:
            return await self._attempts(entry_id, raw, job)
        finally:
            self.current = None

    async def _attempts(self, entry_id: str, raw: str, job: dict[str, Any]) -> str:
        g = self.generator
        for attempt in range(1, g.max_attempts + 1):
            try:
                result = await self.run_job(job)
            except _Busy:
                return "busy"  # left pending: reclaimed after the visibility timeout
            except GenerationError as exc:
                logger.info("memory job %s attempt %d failed: %s", job["id"], attempt, exc)
                if attempt >= g.max_attempts:
                    await self._dead(entry_id, raw, job, str(exc), attempt)
                    return "dead"
                await self._stat(jobs_retried=1)
                await asyncio.sleep(g.backoff * 2 ** (attempt - 1))
                continue
            await self._ack(entry_id)
            self.processed += 1
            await self._stat(
                jobs_done=1 if result.status == "done" else 0,
                jobs_duplicate=1 if result.status == "duplicate" else 0,
                jobs_discarded=1 if result.status == "discarded" else 0,
                facts_created=result.created,
                facts_updated=result.updated,
                facts_deleted=result.deleted,
            )
            return result.status
        return "dead"  # pragma: no cover (the loop returns)

    async def _ack(self, entry_id: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(self.stream, GROUP, entry_id)
        pipe.xdel(self.stream, entry_id)
        await pipe.execute()

    async def _dead(
        self, entry_id: str, raw: str, job: Mapping[str, Any] | None, error: str, attempts: int
    ) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(
            self.keys.generation_dead(),
            {
                "job": raw,
                "error": error[:500],
                "attempts": attempts,
                "entry": entry_id,
                "failed_at": now_ms(),
            },
        )
        pipe.xack(self.stream, GROUP, entry_id)
        pipe.xdel(self.stream, entry_id)
        pipe.hincrby(self.keys.generation_stats(), "jobs_dead", 1)
        await pipe.execute()
        if job is not None:
            fk = self.keys.memory_facts(str(job["app"]), str(job["user"]))
            await self.client.hset(fk.jobs, str(job["id"]), "dead")
        logger.warning(
            "memory job %s dead-lettered after %d attempts: %s", job and job.get("id"), attempts, error
        )

    async def _lock(self, key: str) -> str:
        token = uuid.uuid4().hex
        deadline = time.monotonic() + min(self.visibility_ms / 2000, 30.0)
        while True:
            if await self.client.set(key, token, nx=True, px=self.lock_ms):
                return token
            if time.monotonic() > deadline:
                raise _Busy()
            await asyncio.sleep(0.02)

    async def run_job(self, job: Mapping[str, Any]) -> JobResult:
        """Extract (or take the given facts), consolidate under the user's lock, apply atomically."""
        app, user, job_id = str(job["app"]), str(job["user"]), str(job["id"])
        fk = self.keys.memory_facts(app, user)
        mark = await self.client.hget(fk.jobs, job_id)
        if mark is not None and as_text(mark) == "done":
            return JobResult("duplicate")
        g = self.generator
        usage = ModelUsage()
        sid = str(job.get("sid") or "")
        said: dict[str, JobEvent] = {}
        queued = int(job.get("queued") or 0)
        try:
            if job.get("kind") == "facts":
                facts = [
                    Fact(
                        " ".join(str(f["text"]).split())[: g.max_fact_chars],
                        str(f.get("topic") or g.topics[0].label),
                        (),
                    )
                    for f in job.get("facts") or []
                    if str(f.get("text") or "").strip()
                ]
            else:
                events = [_event_of(e) for e in job.get("events") or []]
                facts = await g.extract(events, usage)
                said.update((e.event_id, e) for e in events)
            if not facts:  # nothing to remember: mark the job done, no lock needed
                res = await self.store.apply(
                    app, user, [], job_id=job_id, ttl_ms=self.ttl_ms, queued_ms=queued
                )
                return JobResult("duplicate" if res.already_applied else "done")
            token = await self._lock(fk.lock)
            try:
                shown = await self._candidates(app, user, facts)
                outcomes = await g.consolidate(facts, shown, usage)
                actions: list[FactAction] = []
                for o in outcomes:
                    if o.action == "CREATE":
                        actions.append(
                            FactAction(
                                "CREATE",
                                o.text or o.fact.text,
                                o.fact.topic,
                                session_id=sid,
                                event_ids=o.fact.event_ids,
                                **_sources(said, o.fact.event_ids),
                            )
                        )
                    elif o.action in ("UPDATE", "DELETE") and o.target is not None:
                        actions.append(
                            FactAction(
                                o.action,
                                o.text if o.action == "UPDATE" else o.target.text,
                                o.target.topic or o.fact.topic,
                                fact_id=o.target.fact_id,
                                session_id=sid,
                                event_ids=o.fact.event_ids,
                                **_sources(said, o.fact.event_ids),
                            )
                        )
                await self._embed(actions)
                ik = self.keys.user_memory_index(app, user)
                try:
                    res = await self.store.apply(
                        app,
                        user,
                        actions,
                        job_id=job_id,
                        ttl_ms=self.ttl_ms,
                        lock_token=token,
                        queued_ms=queued,
                        vector_sets=bool(self.embedder) and await self.index.vector_sets(ik),
                    )
                except ResponseError as exc:
                    if "LOCKLOST" in str(exc):
                        raise GenerationError("the per-user lock expired before the job was applied") from exc
                    raise
            finally:
                with contextlib.suppress(*_TRANSIENT):
                    await self._release(keys=[fk.lock], args=[token])
        finally:
            await self._stat(
                model_calls=usage.calls,
                model_ms=round(usage.latency_ms, 3),
                prompt_tokens=usage.prompt_tokens,
                output_tokens=usage.output_tokens,
            )
        if res.already_applied:
            return JobResult("duplicate")
        if res.discarded:
            return JobResult("discarded")
        return JobResult("done", res.created, res.updated, res.deleted)

    async def _embed(self, actions: Sequence[FactAction]) -> None:
        todo = [a for a in actions if a.action != "DELETE"]
        if self.embedder is None or not todo:
            return
        vectors = await self.embedder.embed([a.text for a in todo])
        for a, v in zip(todo, vectors):
            a.vector = pack(v)

    async def _candidates(self, app: str, user: str, facts: Sequence[Fact]) -> list[Existing]:
        """The existing facts most similar to each new fact (BM25, plus cosine with an embedder),
        numbered 1.. in order of first appearance."""
        if not facts:
            return []
        ik = self.keys.user_memory_index(app, user)
        k = self.generator.candidates_per_fact
        found: dict[str, str] = {}
        searches = await asyncio.gather(*(self.index.search([(ik, FACT_PREFIX)], f.text, k) for f in facts))
        for hits in searches:
            for h in hits:
                found.setdefault(h.doc_id, h.payload)
        if self.embedder is not None:
            vectors = await self.embedder.embed([f.text for f in facts])
            vsets = await self.index.vector_sets(ik)
            extra: list[str] = []
            for v in vectors:
                ranked = await rank(self.client, [ik], v, 50, vector_sets=vsets)
                extra += [doc for _, _, doc in ranked if is_fact_id(doc)][:k]
            extra = [d for d in dict.fromkeys(extra) if d not in found]
            if extra:
                pipe = self.client.pipeline(transaction=False)
                for d in extra:
                    pipe.hget(ik.docs, d)
                    pipe.zscore(ik.expiry, d)
                res = await pipe.execute()
                t = now_ms()
                for n, d in enumerate(extra):
                    if res[2 * n] is not None and res[2 * n + 1] is not None and float(res[2 * n + 1]) > t:
                        found.setdefault(d, as_text(res[2 * n]))
        shown: list[Existing] = []
        for n, (doc, payload) in enumerate(found.items(), 1):
            s = _stored(doc, payload)
            shown.append(Existing(n, s.fact_id, s.text, s.topic))
        return shown


async def generation_stats(client: Any, keys: KeySchema) -> dict[str, Any]:
    """Counters plus the queue: ``queued_now`` (in the stream), ``pending`` (being worked), ``dead``."""
    raw = await client.hgetall(keys.generation_stats())
    out: dict[str, Any] = {}
    for k, v in raw.items():
        val = as_text(v)
        out[as_text(k)] = float(val) if "." in val else int(val)
    pipe = client.pipeline(transaction=False)
    pipe.xlen(keys.generation_jobs())
    pipe.xlen(keys.generation_dead())
    res = await pipe.execute()
    out["queued_now"] = int(res[0])
    out["dead_now"] = int(res[1])
    try:
        pending = await client.xpending(keys.generation_jobs(), GROUP)
        out["pending"] = int(pending.get("pending", 0)) if isinstance(pending, dict) else int(pending[0])
    except ResponseError:
        out["pending"] = 0
    return out


async def dead_jobs(client: Any, keys: KeySchema, count: int = 100) -> list[dict[str, Any]]:
    """The oldest ``count`` dead-lettered jobs: entry id, job id, app, user, error, attempts."""
    out: list[dict[str, Any]] = []
    for entry_id, fields in await client.xrange(keys.generation_dead(), count=count):
        f = {as_text(k): as_text(v) for k, v in fields.items()}
        try:
            job = json.loads(f.get("job", "{}"))
        except ValueError:
            job = {}
        out.append(
            {
                "entry": as_text(entry_id),
                "job": job.get("id"),
                "app": job.get("app"),
                "user": job.get("user"),
                "error": f.get("error", ""),
                "attempts": int(f.get("attempts") or 0),
                "failed_at": int(f.get("failed_at") or 0),
            }
        )
    return out


async def retry_dead(client: Any, keys: KeySchema, entries: Sequence[str] | None = None) -> int:
    """Move dead-lettered jobs (all, or these entry ids) back onto the queue; returns the count."""
    await _ensure_group(client, keys.generation_jobs())
    moved = 0
    for entry_id, fields in await client.xrange(keys.generation_dead()):
        eid = as_text(entry_id)
        if entries is not None and eid not in entries:
            continue
        raw = as_text(fields.get(b"job", fields.get("job", b"")))
        try:
            job = json.loads(raw)
            fk = keys.memory_facts(str(job["app"]), str(job["user"]))
            await client.hdel(fk.jobs, str(job["id"]))
        except (ValueError, KeyError, TypeError):
            pass
        pipe = client.pipeline(transaction=False)
        pipe.xadd(keys.generation_jobs(), {"job": raw})
        pipe.xdel(keys.generation_dead(), eid)
        await pipe.execute()
        moved += 1
    return moved


class GenerationRuntime:
    """What a :class:`~adk_redis.RedisMemoryService` with a generator owns: the queue, a background
    worker task (unless disabled), and the jobs it queued (for :meth:`flush`)."""

    def __init__(
        self,
        *,
        client: Any,
        keys: KeySchema,
        generator: MemoryGenerator,
        embedder: Embedder | None,
        background: bool,
        ttl_hours: float,
        quantization: str,
        max_terms: int,
        visibility_timeout: float = 60.0,
        cursor_ttl_hours: float = 720.0,
    ) -> None:
        self.client = client
        self.keys = keys
        self.generator = generator
        self.queue = GenerationQueue(client, keys, generator, cursor_ttl_hours=cursor_ttl_hours)
        self.worker = GenerationWorker(
            client=client,
            keys=keys,
            generator=generator,
            embedder=embedder,
            ttl_hours=ttl_hours,
            quantization=quantization,
            max_terms=max_terms,
            visibility_timeout=visibility_timeout,
        )
        self.store = self.worker.store
        self.background = background
        self._task: asyncio.Task[int] | None = None
        self._stop: asyncio.Event | None = None
        self._queued: dict[str, tuple[str, str]] = {}

    def _ensure_worker(self) -> None:
        if not self.background:
            return
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._task.get_loop() is loop:
            return
        self._stop = asyncio.Event()
        self._task = loop.create_task(self.worker.run(self._stop, block_ms=500))

    def _track(self, app: str, user: str, ids: Sequence[str]) -> list[str]:
        for j in ids:
            self._queued[j] = (app, user)
        if ids:
            self._ensure_worker()
        return list(ids)

    async def enqueue_events(self, app: str, user: str, sid: str, events: Sequence[JobEvent]) -> list[str]:
        return self._track(app, user, await self.queue.enqueue_events(app, user, sid, events))

    async def enqueue_facts(
        self, app: str, user: str, facts: Sequence[tuple[str, str]], sid: str = ""
    ) -> list[str]:
        return self._track(app, user, await self.queue.enqueue_facts(app, user, facts, sid))

    async def wait(self, job_ids: Sequence[str], timeout: float | None) -> bool:
        """True once every job is done or dead (False at ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        todo = [j for j in job_ids if j in self._queued]
        while todo:
            pipe = self.client.pipeline(transaction=False)
            for j in todo:
                app, user = self._queued[j]
                pipe.hget(self.keys.memory_facts(app, user).jobs, j)
            try:
                marks = await pipe.execute()
            except _TRANSIENT:  # Redis restarting: the jobs are durable, keep waiting
                if deadline is not None and time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0.2)
                continue
            busy = self.worker.current
            for j, m in zip(list(todo), marks):
                if m is not None and j != busy:
                    self._queued.pop(j, None)
            todo = [j for j, m in zip(todo, marks) if m is None or j == busy]
            if not todo:
                break
            if deadline is not None and time.monotonic() > deadline:
                return False
            if not self.background:
                if not await self.worker.step(block_ms=100):
                    await asyncio.sleep(0.02)
            else:
                self._ensure_worker()
                await asyncio.sleep(0.02)
        return True

    async def flush(self, timeout: float | None = 30.0) -> bool:
        return await self.wait(list(self._queued), timeout)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            if self._stop is not None:
                self._stop.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            await self.worker.leave()


# OpenTelemetry spans and durations (adk_redis.telemetry): one per job, one per model step.
telemetry.traced_methods(GenerationWorker, "memory.generation", ("run_job",))
