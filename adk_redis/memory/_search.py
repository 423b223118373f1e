"""A BM25 inverted index kept in Redis and scored server-side by Lua.

Layout of one index (see :class:`adk_redis.keys.MemoryIndexKeys`, all keys in
one hash slot): ``p:<term>`` HASH doc -> ``dl*1024 + tf`` (the posting carries
the document length so scoring needs no extra lookup), ``t`` HASH doc -> the
doc's ``term tf ...`` list (for deletion), ``stats`` HASH ``n``/``l`` (document
count, total length), ``exp`` ZSET doc -> expiry (ms), ``docs`` HASH doc ->
JSON, ``del`` HASH tombstones, ``vec`` HASH optional vectors (or, on servers with
vector sets, the ``vset`` vector set; see :mod:`adk_redis.memory._vectors`), ``o`` HASH
doc -> insertion sequence number (from ``stats`` field ``seq``; ties keep insertion order).

:data:`SEARCH` scores BM25 (k1=1.2, b=0.75, Lucene idf) for the query terms
over one or more indexes and returns the top-K documents with their JSON in a
single round trip.  Term frequencies are weighted (:func:`adk_redis.memory._tokenizer.index_terms`:
a document's own words and its fields count 2, words of adjacent turns 1).  A term found only
in the adjacent turns is stored negated (posting ``-(dl*1024 + tf)``, ``term -tf`` in ``t``): it adds
to the score of a document that matches a query term in its own text or fields, and never makes a
document a hit by itself (every hit contains a query term of its own).  Equal
scores keep insertion order (``<base>:o``, a sequence number per document).
Terms are processed rarest first; once the topk-th best score exceeds what a document not yet
found could still reach (MaxScore: each remaining term adds at most idf * (k1 + 1)), later terms
only score the candidates (exact).  Also (not exact), once the rarer terms produced at least
max(K, :data:`CANDIDATE_FLOOR`) candidates, a more common term only adds its score to
those candidates (HMGET) instead of reading its whole posting list, so a
document matching only the most common query terms may be missed (it would
rank low anyway).  Expired documents are never returned: up to 64 are pruned
per search (their postings removed) and, if more are pending, candidates are
checked against ``exp``; :meth:`SearchIndex.cleanup` prunes everything.

Deletion and pruning derive posting keys from the index base inside the
script; they share the base's hash tag, so they are in the slot the script
runs in (valid on Redis Cluster).  No SCAN/KEYS anywhere.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from .._core.codec import text
from .._core.connection import read_script
from ..errors import RedisOutOfMemoryError, server_error
from ..keys import MemoryIndexKeys, escape
from ._tokenizer import index_terms, own_terms, query_terms
from ._vectors import QUANTIZATIONS, vector_sets_supported

logger = logging.getLogger("adk_redis.memory")

MAX_TF = 1023
PRUNE_BATCH = 64
# Rarest query terms first: once at least max(K, CANDIDATE_FLOOR) candidates are found, a term with a
# longer posting list only adds to their scores (with 10, recall@10 on LoCoMo lost 0.03).  0: only the
# exact MaxScore pruning (LoCoMo dev turns recall@10 0.732 instead of 0.713, search ~35% slower).
CANDIDATE_FLOOR = 50
# Defaults of MEMORY_MAX_TERMS_PER_DOCUMENT / MEMORY_MAX_QUERY_TERMS (adk_redis.config).
DEFAULT_MAX_DOCUMENT_TERMS = 1000
DEFAULT_MAX_QUERY_TERMS = 64

_COMMON = r"""
local function extend(key, ttl)
  local cur = redis.call('PTTL', key)
  if cur == -1 or (cur >= 0 and cur < ttl) then redis.call('PEXPIRE', key, ttl) end
end
-- K: stats, t, exp, docs, vec, vset (the vector set exists only on servers with VADD)
-- keep: nil removes everything, 'vset' keeps the vector set entry, 'all' keeps both vector stores
local function remove_doc(base, K, d, keep)
  local terms = redis.call('HGET', K[2], d)
  redis.call('ZREM', K[3], d)
  redis.call('ZREM', base .. ':ids', d)
  redis.call('HDEL', K[4], d)
  redis.call('HDEL', base .. ':o', d)
  if keep ~= 'all' then redis.call('HDEL', K[5], d) end
  if not keep and redis.call('EXISTS', K[6]) == 1 then redis.call('VREM', K[6], d) end
  if not terms then return 0 end
  local dl = 0
  for term, tf in string.gmatch(terms, '(%S+) (%-?%d+)') do
    redis.call('HDEL', base .. ':p:' .. term, d)
    dl = dl + math.abs(tonumber(tf))
  end
  redis.call('HDEL', K[2], d)
  redis.call('HINCRBY', K[1], 'n', -1)
  redis.call('HINCRBY', K[1], 'l', -dl)
  return 1
end
-- <base>:ids ZSET (score 0): every stored doc id, for listings and per-session deletion by id range
-- (ZRANGEBYLEX).  Indexes written before it existed are filled from the docs HASH once (stats 'ids').
local function ensure_ids(base, stats, docs)
  if redis.call('HEXISTS', stats, 'ids') == 1 or redis.call('HLEN', docs) == 0 then return end
  local all = redis.call('HKEYS', docs)
  for i = 1, #all, 500 do
    local args = {}
    for j = i, math.min(i + 499, #all) do args[#args + 1] = 0; args[#args + 1] = all[j] end
    redis.call('ZADD', base .. ':ids', unpack(args))
  end
  redis.call('HSET', stats, 'ids', 1)
end
"""

# KEYS: stats, t, exp, docs, del, vec, vset, postings_1..n, [side value key, side zset]
# ARGV: mode, doc, payload, expires_ms, ttl_ms, now_ms, n, base, termlist, vector (FP32),
#       side ('0'/'1'), side value, side member, vector set quantization ('' = vec HASH),
#       then n posting values.
# Modes: 'replace', 'skip' (keep a live stored or tombstoned doc), 'refresh' (re-index the terms of
# a live stored doc only, keeping its vector and insertion order).
# Returns 1 stored, 0 skipped.
# The first write is HINCRBY (a deny-oom command): under maxmemory with noeviction the script stops
# there with an OOM error and writes nothing (a script's later writes are not checked by the server).
# <base>:o HASH doc -> insertion sequence number (ties in SEARCH keep insertion order).
INDEX_PUT = (
    _COMMON
    + r"""
local mode, d, payload = ARGV[1], ARGV[2], ARGV[3]
local expires, ttl, now, n, base = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local K = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7]}
local vset = ARGV[10] ~= '' and ARGV[14] ~= ''
local seq
if mode == 'skip' or mode == 'refresh' then
  local live = false
  if redis.call('HEXISTS', KEYS[2], d) == 1 then
    live = tonumber(redis.call('ZSCORE', KEYS[3], d) or '0') > now
  end
  if mode == 'skip' then
    if live then return 0 end
    local tomb = redis.call('HGET', KEYS[5], d)
    if tomb and tonumber(tomb) > now then return 0 end
  else
    if not live then return 0 end
    seq = redis.call('HGET', base .. ':o', d)
    vset = false
  end
end
local next_seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
seq = seq or next_seq
ensure_ids(base, KEYS[1], KEYS[4])
if vset then
  -- first, so a rejected vector (e.g. dimension mismatch) leaves the old document intact
  local r = redis.pcall('VADD', KEYS[7], 'FP32', ARGV[10], d, ARGV[14])
  if type(r) == 'table' and r.err then return r end
  extend(KEYS[7], ttl)
end
local keep = nil
if mode == 'refresh' then keep = 'all' elseif vset then keep = 'vset' end
remove_doc(base, K, d, keep)
redis.call('HDEL', KEYS[5], d)
redis.call('HSET', base .. ':o', d, seq)
extend(base .. ':o', ttl)
redis.call('ZADD', base .. ':ids', 0, d)
extend(base .. ':ids', ttl)
local dl = 0
for j = 1, n do
  local v = math.abs(tonumber(ARGV[14 + j]))
  dl = dl + (v % 1024)
  local pk = KEYS[7 + j]
  redis.call('HSET', pk, d, ARGV[14 + j])
  extend(pk, ttl)
end
redis.call('HSET', KEYS[2], d, ARGV[9])
redis.call('HSET', KEYS[4], d, payload)
redis.call('ZADD', KEYS[3], expires, d)
if ARGV[10] ~= '' and not vset then redis.call('HSET', KEYS[6], d, ARGV[10]); extend(KEYS[6], ttl) end
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HINCRBY', KEYS[1], 'l', dl)
for k = 1, 4 do extend(KEYS[k], ttl) end
if ARGV[11] == '1' then
  redis.call('SET', KEYS[8 + n], ARGV[12], 'PX', ttl)
  redis.call('ZADD', KEYS[9 + n], expires, ARGV[13])
  extend(KEYS[9 + n], ttl)
end
return 1
"""
)

# KEYS: stats, t, exp, docs, del, vec, vset   ARGV: base, doc, tombstone_expiry_ms ('' = none), ttl_ms
INDEX_DELETE = (
    _COMMON
    + r"""
local K = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7]}
local existed = remove_doc(ARGV[1], K, ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[5], ARGV[2], ARGV[3])
  extend(KEYS[5], tonumber(ARGV[4]))
end
return existed
"""
)

# KEYS: per index: stats, t, exp, docs, vec, vset, postings_1..nt
# ARGV: now_ms, topk, nt, ni, then per index: base, doc-id prefix filter ('' = all), then how many of the
# first hits get their JSON and context (the others: '' and '', except a fact's JSON)
# Returns a flat list: index number, doc id, score (string), JSON, context (JSON [[id, author, text], ...]
# of the turns named by the payload's "nb", or ''), ...
SEARCH = (
    _COMMON
    + r"""
local now, topk, nt, ni = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local nctx = tonumber(ARGV[5 + 2 * ni])
local k1, b = 1.2, 0.75
local top = {}
local docs_of = {}
local bases = {}
local seqs = {}
-- insertion sequence of a doc (0 when unknown: indexed before sequences existed)
local function seq(i, d)
  local key = i .. ' ' .. d
  local v = seqs[key]
  if v == nil then
    v = tonumber(redis.call('HGET', bases[i] .. ':o', d) or '0') or 0
    seqs[key] = v
  end
  return v
end
-- true if (s1, i1, d1) ranks before (s2, i2, d2): score, then index, then insertion order
local function before(s1, i1, d1, s2, i2, d2)
  if s1 ~= s2 then return s1 > s2 end
  if i1 ~= i2 then return i1 < i2 end
  local q1, q2 = seq(i1, d1), seq(i2, d2)
  if q1 ~= q2 then return q1 < q2 end
  return d1 < d2
end
local ki = 1
for i = 1, ni do
  local base, filter = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  bases[i] = base
  local K = {KEYS[ki], KEYS[ki + 1], KEYS[ki + 2], KEYS[ki + 3], KEYS[ki + 4], KEYS[ki + 5]}
  docs_of[i] = K[4]
  local dead = redis.call('ZRANGEBYSCORE', K[3], '-inf', now, 'LIMIT', 0, __BATCH__)
  for _, d in ipairs(dead) do remove_doc(base, K, d) end
  local check = #dead == __BATCH__
  local st = redis.call('HMGET', K[1], 'n', 'l')
  local N = tonumber(st[1]) or 0
  if N > 0 then
    local avgdl = (tonumber(st[2]) or 0) / N
    if avgdl <= 0 then avgdl = 1 end
    local scores, cand, ncand, ctx = {}, {}, 0, {}
    -- rarest terms first; once they produced >= max(topk, floor) candidates, a term whose
    -- posting list is longer than the candidate list only scores the candidates
    local order = {}
    for j = 1, nt do
      local pk = KEYS[ki + 5 + j]
      order[#order + 1] = {redis.call('HLEN', pk), pk}
    end
    table.sort(order, function(x, y) return x[1] < y[1] end)
    -- MaxScore: a term adds at most idf * (k1 + 1) to a document.  Once the topk-th best score so far
    -- (scores only grow) beats what a document that is not yet a candidate could still reach (the
    -- remaining terms' bounds plus the most context score any document gathered), later terms only
    -- score the candidates (HMGET) instead of reading their whole posting lists: the top is exact.
    local idfs, rem = {}, 0
    for j, o in ipairs(order) do
      local df = o[1]
      idfs[j] = df > 0 and math.log(1 + (N - df + 0.5) / (df + 0.5)) or 0
      rem = rem + idfs[j] * (k1 + 1)
    end
    local flen = #filter
    -- exact (CANDIDATE_FLOOR 0): MaxScore only; else the floor alone (MaxScore's bookkeeping costs more
    -- than it saves once the floor prunes)
    local exact = __FLOOR__ <= 0
    local maxctx, pruned = 0, false
    for j, o in ipairs(order) do
      local df, pk = o[1], o[2]
      local floor = not exact and ncand >= math.max(topk, __FLOOR__) and ncand < df and ncand <= 4000
      if exact and df > 0 and not pruned and not check and ncand >= topk and ncand < df
          and ncand <= 4000 then
        local vals, nv = {}, 0
        for m = 1, ncand do
          local d = cand[m]
          if flen == 0 or string.sub(d, 1, flen) == filter then
            nv = nv + 1
            vals[nv] = scores[d] + (ctx[d] or 0)
          end
        end
        if nv >= topk then
          table.sort(vals, function(x, y) return x > y end)
          pruned = vals[topk] > maxctx + rem
        end
      end
      rem = rem - idfs[j] * (k1 + 1)
      if df > 0 then
        local idf = idfs[j]
        -- a negative posting: the term is only in the doc's context (adjacent turns), which raises
        -- the rank of a doc that matches in its own text but never makes a doc a hit by itself
        local function add(d, v)
          local own = v >= 0
          if not own then v = -v end
          local tf = v % 1024
          local norm = k1 * (1 - b + b * ((v - tf) / 1024) / avgdl)
          local inc = idf * tf * (k1 + 1) / (tf + norm)
          if not own then
            local c = (ctx[d] or 0) + inc
            ctx[d] = c
            if exact and c > maxctx and not scores[d] then maxctx = c end
            return
          end
          local s = scores[d]
          if not s then ncand = ncand + 1; cand[ncand] = d; s = 0 end
          scores[d] = s + inc
        end
        -- floor (CANDIDATE_FLOOR > 0): the rarer terms gave that many candidates (not exact)
        if pruned or floor then
          local vals = redis.call('HMGET', pk, unpack(cand))
          for m = 1, ncand do
            if vals[m] then add(cand[m], tonumber(vals[m])) end
          end
        else
          local post = redis.call('HGETALL', pk)
          for m = 1, #post, 2 do add(post[m], tonumber(post[m + 1])) end
        end
      end
    end
    for d, c in pairs(ctx) do
      if scores[d] then scores[d] = scores[d] + c end
    end
    for d, s in pairs(scores) do
      local ok = flen == 0 or string.sub(d, 1, flen) == filter
      if ok and #top >= topk then
        local w = top[#top]
        ok = before(s, i, d, w[1], w[2], w[3])
      end
      if ok and check then ok = tonumber(redis.call('ZSCORE', K[3], d) or '0') > now end
      if ok then
        local pos = #top + 1
        while pos > 1 and before(s, i, d, top[pos - 1][1], top[pos - 1][2], top[pos - 1][3]) do
          pos = pos - 1
        end
        table.insert(top, pos, {s, i, d})
        if #top > topk then table.remove(top) end
      end
    end
  end
  ki = ki + 6 + nt
end
-- the context of a hit: [[id, author, text], ...] of the stored turns its payload names in "nb"
local function context_of(docs, payload)
  if not string.find(payload, '"nb":', 1, true) then return '' end
  local ok, doc = pcall(cjson.decode, payload)
  if not ok or type(doc) ~= 'table' or type(doc.nb) ~= 'table' then return '' end
  local items = {}
  for _, nid in ipairs(doc.nb) do
    local np = type(nid) == 'string' and redis.call('HGET', docs, nid)
    if np then
      local ok2, nd = pcall(cjson.decode, np)
      local parts = ok2 and type(nd) == 'table' and type(nd.content) == 'table' and nd.content.parts
      if type(parts) == 'table' then
        local texts = {}
        for _, p in ipairs(parts) do
          if type(p) == 'table' and type(p.text) == 'string' and p.thought ~= true then
            texts[#texts + 1] = p.text
          end
        end
        local author = type(nd.author) == 'string' and nd.author or ''
        items[#items + 1] = {nid, author, table.concat(texts, ' ')}
      end
    end
  end
  if #items == 0 then return '' end
  return cjson.encode(items)
end
local out = {}
for r, c in ipairs(top) do
  -- beyond the first nctx hits, only the (short) facts' JSON: the caller reads the others it keeps
  local payload = ''
  if r <= nctx or string.sub(c[3], 1, 2) == 'f:' then
    payload = redis.call('HGET', docs_of[c[2]], c[3]) or ''
  end
  out[#out + 1] = c[2]
  out[#out + 1] = c[3]
  out[#out + 1] = string.format('%.17g', c[1])
  out[#out + 1] = payload
  out[#out + 1] = r <= nctx and context_of(docs_of[c[2]], payload) or ''
end
return out
"""
)

# KEYS: stats, t, exp, docs, del, vec, vset   ARGV: base, now_ms -> number of documents pruned
CLEANUP = (
    _COMMON
    + r"""
local K = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7]}
local now, removed = tonumber(ARGV[2]), 0
while true do
  local dead = redis.call('ZRANGEBYSCORE', K[3], '-inf', now, 'LIMIT', 0, 500)
  if #dead == 0 then break end
  for _, d in ipairs(dead) do removed = removed + remove_doc(ARGV[1], K, d) end
end
local tombs = redis.call('HGETALL', KEYS[5])
for m = 1, #tombs, 2 do
  if tonumber(tombs[m + 1]) <= now then redis.call('HDEL', KEYS[5], tombs[m]) end
end
return removed
"""
)

# KEYS: stats, t, exp, docs, del, vec, vset, extra keys to delete   ARGV: base
DROP = r"""
local seen = {}
local all = redis.call('HVALS', KEYS[2])
for _, terms in ipairs(all) do
  for term in string.gmatch(terms, '(%S+) %-?%d+') do
    if not seen[term] then
      seen[term] = true
      redis.call('DEL', ARGV[1] .. ':p:' .. term)
    end
  end
end
redis.call('DEL', ARGV[1] .. ':o', ARGV[1] .. ':ids')
for k = 1, #KEYS do redis.call('DEL', KEYS[k]) end
return 1
"""


# KEYS: stats, t, exp, docs, del, vec, vset, ids   ARGV: base, lex min, lex max, tombstone expiry ms ('' =
# none), tombstone ttl ms -> documents removed.  Every doc id in [min, max] (one session's turns: the ids
# 'h:<session>:...') is removed, and tombstoned so re-ingesting the session does not bring it back.
DELETE_RANGE = (
    _COMMON
    + r"""
local K = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7]}
ensure_ids(ARGV[1], KEYS[1], KEYS[4])
local removed = 0
while true do
  local batch = redis.call('ZRANGEBYLEX', KEYS[8], ARGV[2], ARGV[3], 'LIMIT', 0, 500)
  if #batch == 0 then break end
  for _, d in ipairs(batch) do
    removed = removed + remove_doc(ARGV[1], K, d)
    redis.call('ZREM', KEYS[8], d)
    if ARGV[4] ~= '' then redis.call('HSET', KEYS[5], d, ARGV[4]) end
  end
end
if ARGV[4] ~= '' and removed > 0 then extend(KEYS[5], tonumber(ARGV[5])) end
return removed
"""
)

# KEYS: stats, ids, exp, docs   ARGV: base, lex min, lex max, limit, now_ms
# -> flat list: next lex position ('' = no more), then doc id, JSON pairs of live documents.
LIST_RANGE = (
    _COMMON
    + r"""
ensure_ids(ARGV[1], KEYS[1], KEYS[4])
local min, max, limit, now = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {''}
local found = 0
while found < limit do
  local batch = redis.call('ZRANGEBYLEX', KEYS[2], min, max, 'LIMIT', 0, 200)
  if #batch == 0 then out[1] = ''; return out end
  for _, d in ipairs(batch) do
    min = '(' .. d
    local exp = redis.call('ZSCORE', KEYS[3], d)
    local payload = redis.call('HGET', KEYS[4], d)
    if exp and tonumber(exp) > now and payload then
      out[#out + 1] = d
      out[#out + 1] = payload
      found = found + 1
      if found >= limit then break end
    end
  end
  if #batch < 200 and found < limit then out[1] = ''; return out end
end
out[1] = string.sub(min, 2)
return out
"""
)

# KEYS: stats, sequence   ARGV: doc, seq ('' = none)
# A restored document's insertion sequence number (admin import): set (or removed: a document indexed
# before sequences existed), and the counter raised past it so later documents come after it.
SET_SEQUENCE = r"""
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 0
end
local seq = tonumber(ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], seq)
if tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') < seq then redis.call('HSET', KEYS[1], 'seq', seq) end
return 1
"""


#: The typed error of a failed index write: the one mapping of error replies (OOM included).
write_error = server_error


def partial_write_error(exc: Exception, where: str, written: tuple[str, ...]) -> Exception:
    """The typed error of a batch that stopped part way: :func:`write_error`'s, saying what was written.

    A :class:`RedisOutOfMemoryError` carries ``written`` (the ids of the documents stored) and its
    message the count and the first ids; other errors are returned as :func:`write_error` types them.
    """
    typed = write_error(exc, where) if isinstance(exc, ResponseError) else exc
    if not isinstance(typed, RedisOutOfMemoryError):
        return typed
    if not written:
        return typed
    shown = ", ".join(written[:5]) + (", ..." if len(written) > 5 else "")
    return RedisOutOfMemoryError(
        f"{where}: Redis is out of memory (maxmemory reached) part way: {len(written)} document(s) were "
        f"written ({shown}), the rest were not; running the same call again once memory is freed is "
        f"safe: {str(exc)[:160]}",
        written=written,
    )


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Hit:
    """One search result: which index (position in the request), doc id, BM25 score, raw JSON, and
    the raw context (the other party's adjacent turns still stored; '' for none)."""

    index: int
    doc_id: str
    score: float
    payload: str
    context: str = ""


def _context_item(nid: str, raw: Any) -> list[str] | None:
    """``[id, author, text]`` of a stored turn's JSON (None when gone or not a turn), as ``SEARCH``
    builds it."""
    if raw is None:
        return None
    try:
        doc = json.loads(text(raw))
    except ValueError:
        return None
    content = doc.get("content") if isinstance(doc, dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return None
    texts = [
        p["text"]
        for p in parts
        if isinstance(p, dict) and isinstance(p.get("text"), str) and p.get("thought") is not True
    ]
    author = doc.get("author")
    return [nid, author if isinstance(author, str) else "", " ".join(texts)]


def _index_keys(ik: MemoryIndexKeys) -> list[str]:
    return [ik.stats, ik.terms, ik.expiry, ik.docs, ik.deleted, ik.vectors, ik.vector_set]


async def delete_range(
    client: Any,
    ik: MemoryIndexKeys,
    lex_min: str,
    lex_max: str,
    *,
    tombstone_ttl_ms: int | None = None,
    script: Any = None,
) -> int:
    """Remove (and optionally tombstone) every document of ``ik`` whose id is in the lex range.

    A plain function so that the session service can delete a session's memories without importing the
    memory service (one script call, one slot).
    """
    tomb = "" if tombstone_ttl_ms is None else str(now_ms() + tombstone_ttl_ms)
    run = script if script is not None else client.register_script(DELETE_RANGE)
    return int(
        await run(
            keys=[*_index_keys(ik), ik.ids], args=[ik.base, lex_min, lex_max, tomb, tombstone_ttl_ms or 0]
        )
    )


class SearchIndex:
    """Python side of the Lua index: builds keys/arguments, one script call per operation.

    Vectors go into the index's Redis 8 vector set (``VADD``, quantization
    ``quantization``) when the server has vector sets, else into its ``vec`` HASH.
    """

    def __init__(
        self,
        client: Any,
        *,
        quantization: str = "Q8",
        max_document_terms: int = DEFAULT_MAX_DOCUMENT_TERMS,
        max_query_terms: int = DEFAULT_MAX_QUERY_TERMS,
    ) -> None:
        if quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {QUANTIZATIONS}")
        if max_document_terms < 1 or max_query_terms < 1:
            raise ValueError("term limits must be positive")
        self.client = client
        self.quantization = quantization
        self.max_document_terms = max_document_terms
        self.max_query_terms = max_query_terms
        self._put = client.register_script(INDEX_PUT)
        self._delete = client.register_script(INDEX_DELETE)
        self._search = read_script(
            client, SEARCH.replace("__BATCH__", str(PRUNE_BATCH)).replace("__FLOOR__", str(CANDIDATE_FLOOR))
        )
        self._cleanup = client.register_script(CLEANUP)
        self._drop = client.register_script(DROP)
        self._set_sequence = client.register_script(SET_SEQUENCE)
        self._delete_range = client.register_script(DELETE_RANGE)
        self._list_range = client.register_script(LIST_RANGE)

    async def put(
        self,
        ik: MemoryIndexKeys,
        doc_id: str,
        text_: str,
        payload: str,
        *,
        ttl_ms: int,
        skip_existing: bool = False,
        refresh: bool = False,
        vector: bytes = b"",
        side: tuple[str, str, str, str] | None = None,
        now: int | None = None,
        client: Any = None,
        fields: Sequence[str] = (),
        context: Sequence[str] = (),
    ) -> bool | None:
        """Index ``text_`` as ``doc_id``; replace an existing doc unless ``skip_existing``.

        ``fields`` (speaker, date words) are searchable like the text, ``context`` (adjacent
        turns) at half weight (:func:`~adk_redis.memory._tokenizer.index_terms`); terms beyond
        ``max_document_terms`` are ignored (logged).  ``refresh``: only re-index the terms of a
        live stored doc (its vector and insertion order stay).
        ``side`` = (value key, value, registry zset, member): also SET the value
        (same TTL) and register ``member`` scored by expiry, atomically.
        With ``client`` (a pipeline) the call is queued and None returned.

        Raises:
          RedisOutOfMemoryError: Redis is at ``maxmemory`` (noeviction); nothing was written.
        """
        now = now_ms() if now is None else now
        limit = self.max_document_terms
        counts, dropped = index_terms(text_, fields=fields, context=context, max_terms=limit)
        if dropped:
            logger.warning(
                "memory %r: indexing its first %d distinct terms, %d more ignored "
                "(MEMORY_MAX_TERMS_PER_DOCUMENT)",
                doc_id,
                limit,
                dropped,
            )
        own = own_terms(text_, fields) if context else None
        # a term found only in the context is stored with a negative tf: it never makes a hit alone
        terms = [
            (escape(t), min(tf, MAX_TF) * (1 if own is None or t in own else -1)) for t, tf in counts.items()
        ]
        dl = sum(abs(tf) for _, tf in terms)
        termlist = " ".join(f"{t} {tf}" for t, tf in terms)
        keys = _index_keys(ik) + [f"{ik.base}:p:{t}" for t, _ in terms]
        mode = "refresh" if refresh else "skip" if skip_existing else "replace"
        args: list[Any] = [
            mode,
            doc_id,
            payload,
            now + ttl_ms,
            ttl_ms,
            now,
            len(terms),
            ik.base,
            termlist,
            vector,
        ]
        if side is not None:
            keys += [side[0], side[2]]
            args += ["1", side[1], side[3]]
        else:
            args += ["0", "", ""]
        args.append(self.quantization if vector and await self.vector_sets(ik) else "")
        args += [(dl * 1024 + abs(tf)) * (1 if tf > 0 else -1) for _, tf in terms]
        if client is not None:
            await self._put(keys=keys, args=args, client=client)
            return None
        try:
            return int(await self._put(keys=keys, args=args)) == 1
        except ResponseError as exc:
            raise write_error(exc, f"indexing memory {doc_id!r}") from exc

    async def set_sequence(self, ik: MemoryIndexKeys, doc_id: str, seq: int | None) -> None:
        """Give a stored ``doc_id`` the insertion sequence number ``seq`` (None: none, it ties first),
        raising the index's counter past it (restoring a backup keeps the order of equal scores)."""
        await self._set_sequence(keys=[ik.stats, ik.sequence], args=[doc_id, "" if seq is None else seq])

    async def sequences(self, ik: MemoryIndexKeys) -> dict[str, int]:
        """Every document's insertion sequence number (documents indexed before sequences: absent)."""
        return {text(d): int(n) for d, n in (await self.client.hgetall(ik.sequence)).items()}

    async def vector_sets(self, ik: MemoryIndexKeys) -> bool:
        """True if vectors are kept in Redis 8 vector sets on this client's server (cached)."""
        return await vector_sets_supported(self.client, ik.vector_set)

    async def delete(
        self, ik: MemoryIndexKeys, doc_id: str, *, tombstone_ttl_ms: int | None = None, client: Any = None
    ) -> bool:
        """Remove ``doc_id`` (and its postings); optionally leave a tombstone.  With ``client`` (a
        pipeline or recorder) the call is queued there and False returned."""
        tomb = "" if tombstone_ttl_ms is None else str(now_ms() + tombstone_ttl_ms)
        res = await self._delete(
            keys=_index_keys(ik), args=[ik.base, doc_id, tomb, tombstone_ttl_ms or 0], client=client
        )
        return client is None and int(res) == 1

    async def delete_range(
        self, ik: MemoryIndexKeys, lex_min: str, lex_max: str, *, tombstone_ttl_ms: int | None = None
    ) -> int:
        """Remove every document whose id is in the lex range (``ZRANGEBYLEX`` syntax); the count."""
        return await delete_range(
            self.client, ik, lex_min, lex_max, tombstone_ttl_ms=tombstone_ttl_ms, script=self._delete_range
        )

    async def list_range(
        self, ik: MemoryIndexKeys, lex_min: str, lex_max: str, limit: int
    ) -> tuple[list[tuple[str, str]], str | None]:
        """Up to ``limit`` live (doc id, JSON) in id order within the lex range, and where the next
        page starts (an id, exclusive; None when there is no more)."""
        raw = await self._list_range(
            keys=[ik.stats, ik.ids, ik.expiry, ik.docs], args=[ik.base, lex_min, lex_max, limit, now_ms()]
        )
        nxt = text(raw[0])
        items = [(text(raw[i]), text(raw[i + 1])) for i in range(1, len(raw), 2)]
        return items, nxt or None

    async def search(
        self,
        indexes: Sequence[tuple[MemoryIndexKeys, str]],
        query: str | Sequence[str],
        limit: int,
        *,
        context: int | None = None,
    ) -> list[Hit]:
        """BM25 top ``limit`` over ``indexes`` ((index, doc-id prefix filter) pairs) in one call.

        All indexes must live in one slot on a cluster (call once per slot).  Only the first ``context``
        hits (default: all) come with their JSON and context; the others with neither, except a fact
        (``f:`` id) with its JSON (:meth:`complete` reads them for the hits kept).
        """
        terms = query_terms(query) if isinstance(query, str) else list(query)
        if not terms or limit <= 0 or not indexes:
            return []
        if len(terms) > self.max_query_terms:
            logger.warning(
                "searching the first %d distinct query terms, %d more ignored (MEMORY_MAX_QUERY_TERMS)",
                self.max_query_terms,
                len(terms) - self.max_query_terms,
            )
            terms = terms[: self.max_query_terms]
        keys: list[str] = []
        args: list[Any] = [now_ms(), limit, len(terms), len(indexes)]
        for ik, flt in indexes:
            keys += [ik.stats, ik.terms, ik.expiry, ik.docs, ik.vectors, ik.vector_set]
            keys += [ik.postings(t) for t in terms]
            args += [ik.base, flt]
        args.append(limit if context is None else context)
        raw = await self._search(keys=keys, args=args)
        return [
            Hit(int(raw[i]), text(raw[i + 1]), float(text(raw[i + 2])), text(raw[i + 3]), text(raw[i + 4]))
            for i in range(0, len(raw), 5)
        ]

    async def complete(self, hits: Sequence[Hit], indexes: Sequence[MemoryIndexKeys], only: Any) -> list[Hit]:
        """``hits`` of a search over ``indexes`` with the JSON and context the script left out read for
        those in ``only`` (a set of ``(index, doc id)``), as the script gives them: the context is the
        stored turns their JSON names in ``"nb"`` (two pipelined reads at most)."""
        hits = list(hits)
        missing = [n for n, h in enumerate(hits) if (h.index, h.doc_id) in only and not h.payload]
        if missing:
            pipe = self.client.pipeline(transaction=False)
            for n in missing:
                pipe.hget(indexes[hits[n].index - 1].docs, hits[n].doc_id)
            for n, raw in zip(missing, await pipe.execute()):
                hits[n] = dataclasses.replace(hits[n], payload="" if raw is None else text(raw))
        wanted: list[tuple[int, list[str]]] = []
        for n, h in enumerate(hits):
            if '"nb":' in h.payload and (h.index, h.doc_id) in only:
                try:
                    nb = json.loads(h.payload).get("nb")
                except (ValueError, AttributeError):
                    continue
                ids = [i for i in nb if isinstance(i, str)] if isinstance(nb, list) else []
                if ids:
                    wanted.append((n, ids))
        if not wanted:
            return list(hits)
        pipe = self.client.pipeline(transaction=False)
        for n, ids in wanted:
            pipe.hmget(indexes[hits[n].index - 1].docs, ids)
        out = list(hits)
        for (n, ids), payloads in zip(wanted, await pipe.execute()):
            items = [item for item in map(_context_item, ids, payloads) if item is not None]
            if items:
                out[n] = dataclasses.replace(hits[n], context=json.dumps(items))
        return out

    async def cleanup(self, ik: MemoryIndexKeys) -> int:
        """Prune every expired document and tombstone; returns documents removed."""
        return int(await self._cleanup(keys=_index_keys(ik), args=[ik.base, now_ms()]))

    async def drop(self, ik: MemoryIndexKeys, extra_keys: Sequence[str] = ()) -> None:
        """Delete the whole index (every posting) plus ``extra_keys`` of the same slot."""
        await self._drop(keys=_index_keys(ik) + list(extra_keys), args=[ik.base])
