"""Erasing one user: everything adk_redis stores of (app, user), counted per kind.

The user's own keys (sessions and their events, ``user:`` state, the session indexes, the memory index
with every posting, user-context documents, session history) share the ``{app:user}`` hash slot and are
erased by one script, so a concurrent write of that user lands wholly before the erasure (and is erased)
or wholly after it (and remains).  What lives elsewhere references the user's sessions: the app's
session indexes and the memory registry (``{app}`` slot), design-API owner records and failed-access
counters.  On a standalone server the same script erases those too (one atomic step).  On a cluster they
are removed after the user's slot, one step per slot: an app-index entry is removed only when it is not
newer than the erasure, and an owner record only while it still names the user, so a session created
again after the erasure keeps its entries.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from .._core.codec import text
from ..keys import KeySchema, escape

__all__ = ["ForgetResult", "forget_user"]


@dataclass(frozen=True)
class ForgetResult:
    """What :func:`forget_user` erased, per kind."""

    sessions: int = 0  #: session records
    events: int = 0  #: events of those sessions
    user_state: int = 0  #: ``user:`` state keys
    memories: int = 0  #: searchable memories (ingested turns, explicit memories)
    user_context: int = 0  #: user-context documents
    session_history: int = 0  #: session-history entries (design API)
    owner_records: int = 0  #: design-API session owner records
    counters: int = 0  #: failed-access counters of the user and of its sessions
    facts: int = 0  #: extracted facts (memory generation; with their revisions and queued jobs)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# KEYS: user_index, user_created, user_state, ctx, history order, data, exp, then the memory index:
#       stats, t, exp, docs, del, vec, vset, o, ids
# ARGV: session meta prefix, index base, user-context key prefix, mode ('user' | 'all'),
#       with 'all' (standalone only: keys of other slots): app_index, app_created, registry, escaped user,
#       owner key prefix, user id, security sessions zset, security window key, flagged zset, flag label
# -> {escaped session ids..., 'sessions', 'events', 'state', 'memories', 'contexts', 'history', owners,
#     counters, server time}
ERASE_USER = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local sids, seen = {}, {}
for _, k in ipairs({KEYS[1], KEYS[2]}) do
  for _, m in ipairs(redis.call('ZRANGE', k, 0, -1)) do
    if not seen[m] then seen[m] = true; sids[#sids + 1] = m end
  end
end
local sessions, events = 0, 0
for _, m in ipairs(sids) do
  local meta = ARGV[1] .. m
  if redis.call('EXISTS', meta) == 1 then
    sessions = sessions + 1
    local n = tonumber(redis.call('HGET', meta, '_n') or '')
    if not n then n = redis.call('LLEN', meta .. ':log') + redis.call('ZCARD', meta .. ':ts') end
    events = events + n
  end
  redis.call('DEL', meta, meta .. ':log', meta .. ':ids', meta .. ':tm', meta .. ':events', meta .. ':ts')
end
local state = redis.call('HLEN', KEYS[3])
local contexts = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  contexts = contexts + redis.call('DEL', ARGV[3] .. m)
end
local history = redis.call('ZCARD', KEYS[5])
local docs = redis.call('HLEN', KEYS[11])
local indexed_ctx = redis.call('ZCARD', KEYS[4])
local memories = math.max(0, docs - indexed_ctx)
local terms_seen = {}
for _, terms in ipairs(redis.call('HVALS', KEYS[9])) do
  for term in string.gmatch(terms, '(%S+) %-?%d+') do
    if not terms_seen[term] then
      terms_seen[term] = true
      redis.call('DEL', ARGV[2] .. ':p:' .. term)
    end
  end
end
for k = 1, #KEYS do redis.call('DEL', KEYS[k]) end
local owners, counters = 0, 0
if ARGV[4] == 'all' then
  for _, m in ipairs(sids) do
    local member = ARGV[8] .. ':' .. m
    redis.call('ZREM', ARGV[5], member)
    redis.call('ZREM', ARGV[6], member)
    local okey = ARGV[9] .. m
    if redis.call('GET', okey) == ARGV[10] then owners = owners + redis.call('DEL', okey) end
    counters = counters + redis.call('ZREM', ARGV[11], m)
  end
  redis.call('ZREM', ARGV[7], ARGV[8])
  counters = counters + redis.call('DEL', ARGV[12]) + redis.call('ZREM', ARGV[13], ARGV[14])
end
local out = {}
for _, m in ipairs(sids) do out[#out + 1] = m end
for _, v in ipairs({sessions, events, state, memories, contexts, history, owners, counters}) do
  out[#out + 1] = tostring(v)
end
out[#out + 1] = string.format('%.6f', now)
return out
"""

# Cluster, the {app} slot. KEYS: app_index, app_created, registry  ARGV: not after (s), escaped user, sids...
ERASE_APP = r"""
local limit = tonumber(ARGV[1])
for i = 3, #ARGV do
  local member = ARGV[2] .. ':' .. ARGV[i]
  for k = 1, 2 do
    local s = redis.call('ZSCORE', KEYS[k], member)
    if s and tonumber(s) <= limit then redis.call('ZREM', KEYS[k], member) end
  end
end
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
"""

# Cluster, one owner record. KEYS: owner key  ARGV: user id
ERASE_OWNER = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _flag_label(app_name: str, user_id: str) -> tuple[str, str]:
    """The enumeration guard's window key ident and flag label of a user (adk_redis.security)."""
    from ..security import EnumerationGuard

    ident = f"{app_name}\x00{user_id}"
    return ident, EnumerationGuard._label("user", ident)


async def forget_user(
    client: Any, keys: KeySchema, app_name: str, user_id: str, *, cluster: bool
) -> ForgetResult:
    """Erase everything stored of (app, user); see the module docstring for the guarantees."""
    uid = str(user_id)
    ik = keys.user_memory_index(app_name, uid)
    hk = keys.history(app_name, uid)
    session_prefix = keys.session_meta_prefix(app_name, uid)
    context_prefix = keys.user_context_prefix(app_name, uid)
    owner_prefix = keys.session_owner_prefix(app_name)
    ident, label = _flag_label(app_name, uid)
    script_keys = [
        keys.user_index(app_name, uid),
        keys.user_created_index(app_name, uid),
        keys.user_state(app_name, uid),
        keys.user_context_index(app_name, uid),
        hk.order,
        hk.data,
        hk.expiry,
        ik.stats,
        ik.terms,
        ik.expiry,
        ik.docs,
        ik.deleted,
        ik.vectors,
        ik.vector_set,
        ik.sequence,
        ik.ids,
    ]
    args: list[Any] = [session_prefix, ik.base, context_prefix]
    sec_sessions = keys.security_sessions(app_name)
    if cluster:
        args.append("user")
    else:
        args += [
            "all",
            keys.app_index(app_name),
            keys.app_created_index(app_name),
            keys.memory_registry(app_name, "users"),
            escape(uid),
            owner_prefix,
            uid,
            sec_sessions,
            keys.security_window("user", ident),
            keys.security_flagged(),
            label,
        ]
    started = time.time()
    raw = [text(v) for v in await client.eval(ERASE_USER, len(script_keys), *script_keys, *args)]
    sids, nums, server_now = raw[:-9], [int(v) for v in raw[-9:-1]], float(raw[-1])
    sessions, events, state, memories, contexts, history, owners, counters = nums
    if cluster:
        not_after = max(server_now, started) + 1.0  # client clocks (index scores) may run a little ahead
        await client.eval(
            ERASE_APP,
            3,
            keys.app_index(app_name),
            keys.app_created_index(app_name),
            keys.memory_registry(app_name, "users"),
            repr(not_after),
            escape(uid),
            *sids,
        )
        for m in sids:
            owners += int(await client.eval(ERASE_OWNER, 1, f"{owner_prefix}{m}", uid))
        if sids:
            counters += int(await client.zrem(sec_sessions, *sids))
        counters += int(await client.delete(keys.security_window("user", ident)))
        counters += int(await client.zrem(keys.security_flagged(), label))
    return ForgetResult(
        sessions=sessions,
        events=events,
        user_state=state,
        memories=memories,
        user_context=contexts,
        session_history=history,
        owner_records=owners,
        counters=counters,
    )
