"""Extracted facts: stored as ``f:<id>`` documents in the user's search index, with revisions.

A fact is a document of the user's BM25 index (:mod:`adk_redis.memory_search`), so one search ranks
facts and turns together.  Its payload (JSON, ``src`` = ``fact``) carries the text, topic, source
session and event ids, the job that last wrote it and its revision number.  Every change appends a
revision (JSON: ``rev``, ``action``, ``text``, ``topic``, ``sid``, ``eids``, ``job``, ``ts``) to the
fact's revision list (:class:`adk_redis.keys.MemoryFactKeys`).

:data:`APPLY` applies every action of one job in one Lua call: nothing or all of it, once per job
id (a second run finds the job marked done), CREATE skipped when a live fact has the same
fingerprint (text + source event ids), and refused when the caller's per-user lock token is no
longer the one in Redis.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from google.adk.memory.memory_entry import MemoryEntry
from google.genai import types

from .._core.codec import text as as_text
from ..keys import KeySchema, MemoryIndexKeys, escape, unescape
from ._docs import history_id
from ._search import _COMMON, MAX_TF, now_ms
from ._tokenizer import index_terms, own_terms

__all__ = [
    "FACT_PREFIX",
    "FactAction",
    "FactStore",
    "boost_sources",
    "collapse",
    "StoredFact",
    "decode_fact",
    "erase_user_facts",
    "fact_doc_id",
    "fingerprint",
    "is_fact_id",
]

FACT_PREFIX = "f:"
_REV = "__REV__"
JOB_MARK_TTL_MS = 7 * 24 * 3600 * 1000


_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def month(ts: float) -> str:
    """``"May 2024"``: the month a fact's source turns were said (a searchable field, as for turns)."""
    try:
        when = datetime.fromtimestamp(ts, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return ""
    return f"{_MONTHS[when.month - 1]} {when.year}"


def fact_doc_id(fact_id: str) -> str:
    """The memory id of a fact: ``f:<id>``."""
    return FACT_PREFIX + escape(fact_id)


def is_fact_id(memory_id: str) -> bool:
    return memory_id.startswith(FACT_PREFIX) and len(memory_id) > len(FACT_PREFIX)


def _fact_id(memory_id: str) -> str:
    return unescape(memory_id[len(FACT_PREFIX) :]) if is_fact_id(memory_id) else memory_id


def fingerprint(text: str, event_ids: Sequence[str]) -> str:
    """Idempotency key of an extracted fact: its normalized text and its source events."""
    norm = " ".join(text.lower().split())
    raw = norm + "\x00" + "\x00".join(sorted(set(event_ids)))
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredFact:
    """A live fact as read back from the index."""

    fact_id: str
    text: str
    topic: str
    session_id: str
    event_ids: tuple[str, ...]
    revision: int
    ts: float | None


@dataclass
class FactAction:
    """One change of a job: ``CREATE`` / ``UPDATE`` / ``DELETE`` / ``RESTORE`` a fact."""

    action: str
    text: str
    topic: str = ""
    fact_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    session_id: str = ""
    event_ids: tuple[str, ...] = ()
    vector: bytes = b""
    ts: float | None = None
    context: tuple[str, ...] = ()  # the source turns' text: searchable at half weight
    fields: tuple[str, ...] = ()  # the source turns' speakers and month: searchable like the text


def _payload(a: FactAction, job_id: str) -> str:
    body = {
        "v": 1,
        "src": "fact",
        "content": {"role": "user", "parts": [{"text": a.text}]},
        "author": "memory",
        "ts": a.ts,
        "topic": a.topic,
        "sid": a.session_id,
        "eids": list(a.event_ids),
        "job": job_id,
    }
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return raw[:-1] + ',"rev":' + _REV + "}"


def _revision(a: FactAction, job_id: str, now: int) -> str:
    body = {
        "action": a.action,
        "text": a.text,
        "topic": a.topic,
        "sid": a.session_id,
        "eids": list(a.event_ids),
        "job": job_id,
        "ts": now / 1000.0,
    }
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return raw[:-1] + ',"rev":' + _REV + "}"


def decode_fact(doc_id: str, payload: str) -> MemoryEntry:
    """The :class:`MemoryEntry` of a fact hit: ``id`` = ``f:<id>``, ``custom_metadata`` kind/topic/..."""
    data = json.loads(payload)
    ts = data.get("ts")
    when = datetime.fromtimestamp(ts, tz=timezone.utc).isoformat() if isinstance(ts, (int, float)) else None
    return MemoryEntry(
        id=doc_id,
        content=types.Content.model_validate(data["content"]),
        author="memory",
        timestamp=when,
        custom_metadata={
            "kind": "fact",
            "topic": data.get("topic", ""),
            "session_id": data.get("sid", ""),
            "event_ids": list(data.get("eids") or []),
            "revision": int(data.get("rev", 0)),
        },
    )


def _stored(doc_id: str, payload: str) -> StoredFact:
    data = json.loads(payload)
    parts = (data.get("content") or {}).get("parts") or [{}]
    return StoredFact(
        fact_id=_fact_id(doc_id),
        text=str(parts[0].get("text", "")),
        topic=str(data.get("topic", "")),
        session_id=str(data.get("sid", "")),
        event_ids=tuple(data.get("eids") or ()),
        revision=int(data.get("rev", 0)),
        ts=data.get("ts"),
    )


# KEYS: stats, t, exp, docs, del, vec, vset, all, fp, jobs, lock
# ARGV: base, job id, lock token ('' = unchecked), now_ms, ttl_ms, quantization ('' = vec HASH),
#       revisions key prefix, n ops, job queued at (ms, '' = unchecked), then per op 8 values: action,
#       doc id, fact id (escaped), payload, termlist, vector, revision JSON, fingerprint
# Returns {status, created, updated, deleted, skipped}; status -1: job already applied, -2: the job
# was queued before the user's facts were erased (nothing applied).
APPLY = (
    _COMMON
    + r"""
local base, job, token = ARGV[1], ARGV[2], ARGV[3]
local now, ttl, quant, revp, nops = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7], tonumber(ARGV[8])
local K = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7]}
if token ~= '' and redis.call('GET', KEYS[11]) ~= token then
  return redis.error_reply('LOCKLOST the per-user generation lock expired')
end
if redis.call('HGET', KEYS[10], job) == 'done' then return {-1, 0, 0, 0, 0} end
-- queued before the user was forgotten (erase_user_facts): discarded
local forgotten = tonumber(redis.call('HGET', KEYS[10], '__forgotten__') or '0')
if ARGV[9] ~= '' and forgotten > 0 and tonumber(ARGV[9]) <= forgotten then return {-2, 0, 0, 0, 0} end
local function live(d)
  return redis.call('HEXISTS', KEYS[4], d) == 1 and tonumber(redis.call('ZSCORE', KEYS[3], d) or '0') > now
end
ensure_ids(base, KEYS[1], KEYS[4])
local function put_doc(d, payload, termlist, vector)
  local vset = vector ~= '' and quant ~= ''
  if vset then
    local r = redis.pcall('VADD', KEYS[7], 'FP32', vector, d, quant)
    if type(r) == 'table' and r.err then vset = false end
  end
  remove_doc(base, K, d, vset and 'vset' or nil)
  redis.call('HDEL', KEYS[5], d)
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('HSET', base .. ':o', d, seq)
  extend(base .. ':o', ttl)
  redis.call('ZADD', base .. ':ids', 0, d)
  extend(base .. ':ids', ttl)
  -- a negative tf: the term is only in the source turns (context), it never makes a hit alone
  local dl = 0
  for _, tf in string.gmatch(termlist, '(%S+) (%-?%d+)') do dl = dl + math.abs(tonumber(tf)) end
  for term, tf in string.gmatch(termlist, '(%S+) (%-?%d+)') do
    local pk = base .. ':p:' .. term
    local v = tonumber(tf)
    local sign = 1
    if v < 0 then sign = -1 end
    redis.call('HSET', pk, d, (dl * 1024 + math.abs(v)) * sign)
    extend(pk, ttl)
  end
  redis.call('HSET', KEYS[2], d, termlist)
  redis.call('HSET', KEYS[4], d, payload)
  redis.call('ZADD', KEYS[3], now + ttl, d)
  if vector ~= '' and not vset then redis.call('HSET', KEYS[6], d, vector); extend(KEYS[6], ttl) end
  if vset then extend(KEYS[7], ttl) end
  redis.call('HINCRBY', KEYS[1], 'n', 1)
  redis.call('HINCRBY', KEYS[1], 'l', dl)
  for k = 1, 4 do extend(KEYS[k], ttl) end
end
local function revise(fid, revjson)
  local rk = revp .. fid
  local n = redis.call('LLEN', rk) + 1
  redis.call('RPUSH', rk, (string.gsub(revjson, '__REV__}$', n .. '}')))
  extend(rk, ttl)
  redis.call('SADD', KEYS[8], fid)
  extend(KEYS[8], ttl)
  return n
end
local counts = {0, 0, 0, 0}
for i = 0, nops - 1 do
  local o = 9 + i * 8
  local action, d, fid, payload = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  local termlist, vector, revjson, fp = ARGV[o + 5], ARGV[o + 6], ARGV[o + 7], ARGV[o + 8]
  if action == 'CREATE' then
    local prev = fp ~= '' and redis.call('HGET', KEYS[9], fp)
    if prev and live('f:' .. prev) then
      counts[4] = counts[4] + 1
    else
      local n = revise(fid, revjson)
      put_doc(d, (string.gsub(payload, '__REV__}$', n .. '}')), termlist, vector)
      if fp ~= '' then redis.call('HSET', KEYS[9], fp, fid); extend(KEYS[9], ttl) end
      counts[1] = counts[1] + 1
    end
  elseif action == 'UPDATE' or action == 'RESTORE' then
    if action == 'UPDATE' and not live(d) then
      counts[4] = counts[4] + 1
    else
      local n = revise(fid, revjson)
      put_doc(d, (string.gsub(payload, '__REV__}$', n .. '}')), termlist, vector)
      counts[2] = counts[2] + 1
    end
  elseif action == 'DELETE' then
    if not live(d) then
      counts[4] = counts[4] + 1
    else
      revise(fid, revjson)
      remove_doc(base, K, d)
      counts[3] = counts[3] + 1
    end
  end
end
if job ~= '' then
  redis.call('HSET', KEYS[10], job, 'done')
  extend(KEYS[10], __JOBTTL__)
end
return {1, counts[1], counts[2], counts[3], counts[4]}
"""
)

# KEYS: stats, t, exp, docs, del, vec, vset, all, fp, revisions   ARGV: base, doc id, fact id
ERASE = (
    _COMMON
    + r"""
local K = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7]}
local existed = remove_doc(ARGV[1], K, ARGV[2])
local revs = redis.call('DEL', KEYS[10])
redis.call('SREM', KEYS[8], ARGV[3])
local fps = redis.call('HGETALL', KEYS[9])
for m = 1, #fps, 2 do
  if fps[m + 1] == ARGV[3] then redis.call('HDEL', KEYS[9], fps[m]) end
end
return existed + revs
"""
)


def _index_keys(ik: MemoryIndexKeys) -> list[str]:
    return [ik.stats, ik.terms, ik.expiry, ik.docs, ik.deleted, ik.vectors, ik.vector_set]


@dataclass(frozen=True)
class ApplyResult:
    """What one :meth:`FactStore.apply` call did (``already_applied``: the job had run before)."""

    already_applied: bool
    created: int
    updated: int
    deleted: int
    skipped: int
    discarded: bool = False  # queued before the user was forgotten


class FactStore:
    """The facts of every user under one key prefix: apply, read, revisions, rollback, erase."""

    def __init__(
        self, client: Any, keys: KeySchema, *, quantization: str = "Q8", max_terms: int = 1000
    ) -> None:
        self.client = client
        self.keys = keys
        self.quantization = quantization
        self.max_terms = max_terms
        self._apply = client.register_script(APPLY.replace("__JOBTTL__", str(JOB_MARK_TTL_MS)))
        self._erase = client.register_script(ERASE)

    def _termlist(self, text: str, context: Sequence[str] = (), fields: Sequence[str] = ()) -> str:
        """``term tf ...`` as the index stores it: a term only in ``context`` with a negative tf."""
        counts, _ = index_terms(text, fields=fields, context=context, max_terms=self.max_terms)
        own = own_terms(text, fields)
        return " ".join(
            f"{escape(t)} {min(tf, MAX_TF) * (1 if t in own else -1)}" for t, tf in counts.items()
        )

    async def apply(
        self,
        app_name: str,
        user_id: str,
        actions: Sequence[FactAction],
        *,
        job_id: str,
        ttl_ms: int,
        lock_token: str = "",
        vector_sets: bool = False,
        now: int | None = None,
        queued_ms: int | None = None,
    ) -> ApplyResult:
        """Apply ``actions`` atomically (once per ``job_id``; raises ``ResponseError`` LOCKLOST when
        ``lock_token`` no longer holds the user's lock)."""
        now = now_ms() if now is None else now
        ik = self.keys.user_memory_index(app_name, user_id)
        fk = self.keys.memory_facts(app_name, user_id)
        args: list[Any] = [
            ik.base,
            job_id,
            lock_token,
            now,
            ttl_ms,
            self.quantization if vector_sets else "",
            fk.revisions_prefix,
            len(actions),
            "" if queued_ms is None else queued_ms,
        ]
        for a in actions:
            fp = fingerprint(a.text, a.event_ids) if a.action == "CREATE" else ""
            if a.ts is None:
                a.ts = now / 1000.0
            args += [
                a.action,
                fact_doc_id(a.fact_id),
                escape(a.fact_id),
                _payload(a, job_id),
                self._termlist(a.text, a.context, a.fields),
                a.vector,
                _revision(a, job_id, now),
                fp,
            ]
        keys = _index_keys(ik) + [fk.all, fk.fingerprints, fk.jobs, fk.lock]
        res = await self._apply(keys=keys, args=args)
        return ApplyResult(
            int(res[0]) == -1, int(res[1]), int(res[2]), int(res[3]), int(res[4]), int(res[0]) == -2
        )

    async def get(self, app_name: str, user_id: str, fact_ids: Sequence[str]) -> list[StoredFact | None]:
        """The live facts of ``fact_ids`` (None where deleted or expired)."""
        if not fact_ids:
            return []
        ik = self.keys.user_memory_index(app_name, user_id)
        pipe = self.client.pipeline(transaction=False)
        for fid in fact_ids:
            pipe.hget(ik.docs, fact_doc_id(fid))
            pipe.zscore(ik.expiry, fact_doc_id(fid))
        res = await pipe.execute()
        t = now_ms()
        out: list[StoredFact | None] = []
        for n, fid in enumerate(fact_ids):
            payload, exp = res[2 * n], res[2 * n + 1]
            alive = payload is not None and exp is not None and float(exp) > t
            out.append(_stored(fact_doc_id(fid), as_text(payload)) if alive else None)
        return out

    async def all_facts(self, app_name: str, user_id: str) -> list[StoredFact]:
        """Every live fact of the user (by the fact registry; for listings and tests)."""
        fk = self.keys.memory_facts(app_name, user_id)
        ids = sorted(unescape(as_text(m)) for m in await self.client.smembers(fk.all))
        return [f for f in await self.get(app_name, user_id, ids) if f is not None]

    async def revisions(self, app_name: str, user_id: str, fact_id: str) -> list[dict[str, Any]]:
        """The fact's revisions, oldest first (``rev`` 1, 2, ...)."""
        fk = self.keys.memory_facts(app_name, user_id)
        raw = await self.client.lrange(fk.revisions(fact_id), 0, -1)
        return [json.loads(as_text(r)) for r in raw]

    async def erase(self, app_name: str, user_id: str, fact_id: str) -> bool:
        """Delete one fact and its revisions; True if anything was there."""
        ik = self.keys.user_memory_index(app_name, user_id)
        fk = self.keys.memory_facts(app_name, user_id)
        keys = _index_keys(ik) + [fk.all, fk.fingerprints, fk.revisions(fact_id)]
        return int(await self._erase(keys=keys, args=[ik.base, fact_doc_id(fact_id), escape(fact_id)])) > 0


async def erase_user_facts(client: Any, keys: KeySchema, app_name: str, user_id: str) -> dict[str, int]:
    """Remove every fact of (app, user) with its revisions, job marks, cursors, lock and queued jobs.

    For ``forget_user``: returns ``{"facts": n, "revisions": n, "jobs": n}`` (fact documents,
    revision lists and queued jobs removed).  A job a worker is running meanwhile is discarded at
    apply time (it was queued before the erasure), so no fact comes back.  The fact documents live
    in the user's index (dropping that index removes them too).
    """
    store = FactStore(client, keys)
    fk = keys.memory_facts(app_name, user_id)
    ids = [unescape(as_text(m)) for m in await client.smembers(fk.all)]
    facts = revisions = 0
    for fid in ids:
        ik = keys.user_memory_index(app_name, user_id)
        had_doc = await client.hexists(ik.docs, fact_doc_id(fid))
        had_revs = await client.exists(fk.revisions(fid))
        await store.erase(app_name, user_id, fid)
        facts += int(bool(had_doc))
        revisions += int(bool(had_revs))
    had_jobs = int(await client.exists(fk.cursor, fk.jobs)) > 0
    await client.delete(fk.all, fk.fingerprints, fk.jobs, fk.cursor, fk.lock)
    jobs = 0
    if had_jobs:
        # jobs queued before now are discarded when a worker gets to them (and removed from the queue);
        # the marker (this user's only key left) expires with the job marks
        pipe = client.pipeline(transaction=False)
        pipe.hset(fk.jobs, "__forgotten__", now_ms())
        pipe.pexpire(fk.jobs, JOB_MARK_TTL_MS)
        await pipe.execute()
        jobs = await _drop_user_jobs(client, keys, app_name, user_id)
    return {"facts": facts, "revisions": revisions, "jobs": jobs}


async def _drop_user_jobs(client: Any, keys: KeySchema, app_name: str, user_id: str) -> int:
    """Remove the user's queued jobs from the stream (read a page at a time; not a request path)."""
    stream = keys.generation_jobs()
    dropped = 0
    start = "-"
    while True:
        page = await client.xrange(stream, min=start, count=500)
        if not page:
            return dropped
        mine: list[Any] = []
        for entry_id, fields in page:
            try:
                job = json.loads(as_text(fields.get(b"job", fields.get("job", b"{}"))))
            except ValueError:
                continue
            if job.get("app") == app_name and job.get("user") == user_id:
                mine.append(entry_id)
        if mine:
            pipe = client.pipeline(transaction=False)
            pipe.xack(stream, "generators", *mine)
            pipe.xdel(stream, *mine)
            await pipe.execute()
            dropped += len(mine)
        if len(page) < 500:
            return dropped
        start = "(" + as_text(page[-1][0])


#: In a search of facts and turns together, a fact and the turn it came from that both match each gain
#: this share of the other's score (the best such partner's): two independent matches of one exchange.
SOURCE_BOOST = 0.25


def _sources(h: Any) -> set[str]:
    """The turn ids a hit stands for: a fact's source turns, a turn itself (other indexes: none)."""
    if h.index != 1:
        return set()
    if not is_fact_id(h.doc_id):
        return {h.doc_id}
    try:
        data = json.loads(h.payload)
        sid = str(data.get("sid") or "")
        return {history_id(sid, str(e)) for e in data.get("eids") or []}
    except (ValueError, AttributeError):
        return set()


def boost_sources(hits: Sequence[Any], share: float = SOURCE_BOOST) -> list[Any]:
    """``hits`` re-ranked: a fact gains ``share`` of the best score of a hit among its source turns,
    and a turn ``share`` of the best score of a fact that came from it (stable for equal scores).

    Hits are :class:`adk_redis.memory._search.Hit` best first; the returned ones carry the new score.
    """
    if share <= 0 or not any(h.index == 1 and is_fact_id(h.doc_id) for h in hits):
        return list(hits)
    srcs = [_sources(h) for h in hits]
    best: dict[str, list[tuple[float, str]]] = {}
    for h, ss in zip(hits, srcs):
        for s in ss:
            best.setdefault(s, []).append((h.score, h.doc_id))
    out = []
    for h, ss in zip(hits, srcs):
        fact = is_fact_id(h.doc_id)
        partner = max((score for s in ss for score, d in best[s] if is_fact_id(d) != fact), default=0.0)
        out.append(dataclasses.replace(h, score=h.score + share * partner) if partner else h)
    return sorted(out, key=lambda h: -h.score)


def collapse(hits: Sequence[Any], limit: int) -> list[Any]:
    """The first ``limit`` hits without the turns a higher-ranked fact came from (the fact already
    says it, shorter); hits are :class:`adk_redis.memory_search.Hit` (``index`` 1 = the user's)."""
    covered: set[str] = set()
    out: list[Any] = []
    for h in hits:
        if h.index == 1 and is_fact_id(h.doc_id):
            try:
                data = json.loads(h.payload)
                sid = str(data.get("sid") or "")
                sources = {history_id(sid, str(e)) for e in data.get("eids") or []}
            except (ValueError, AttributeError):
                sources = set()
            if sources and sources <= covered:
                continue  # every turn it came from is already above
            covered |= sources
        elif h.index == 1 and h.doc_id in covered:
            continue
        elif h.index == 1:
            covered.add(h.doc_id)
        out.append(h)
        if len(out) >= limit:
            break
    return out
