"""Lua scripts: each hot-path write or read is one atomic server-side step.

Scripts receive every key they touch in KEYS (built by :mod:`adk_redis.keys`),
so they are valid on Redis Cluster when the caller passes keys of one slot.
The trailing app-level keys are optional: on a cluster the service passes
them to a second step that runs in the app's slot.
"""

from __future__ import annotations

from ._layout import LUA_PRELUDE

# Containment of foreign keys of the wrong Redis type under our prefix (a STRING where the app's state
# HASH or an index ZSET belongs):
# * ``state_of(key)``: a state hash for reading, or the string '!' when the key has another type (the
#   service leaves that scope's state out, logged with the key's name);
# * ``wrong_type(key, want)``: checked before a script's first write, so a write that would meet such a
#   key writes nothing and names the key ({-4, key, type}).
_CONTAINMENT = r"""
local function state_of(key)
  local h = redis.pcall('HGETALL', key)
  if h.err then return '!' end
  return h
end
local function wrong_type(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then return {-4, key, t} end
  return nil
end
"""

# Every script that reads or writes a session's events takes its keys first, in the order of
# ``SessionKeys.script_keys``: meta, log, ids, times, legacy_events, legacy_times.
#
# ``upgrade()`` converts a format-1 record (events in a HASH ``<seq> -> payload, #<id> -> seq``
# and a ZSET of timestamps) to format 2 (a LIST of payloads, a HASH id -> seq, a LIST of
# timestamps), in place and atomically, on its first touch; a format-2 record costs one HGET.
_SESSION_EVENTS = (
    LUA_PRELUDE
    + _CONTAINMENT
    + r"""
local function upgrade()
  if redis.call('HGET', KEYS[1], F_V) == FORMAT then return end
  if redis.call('EXISTS', KEYS[1]) == 0 then return end
  local n = tonumber(redis.call('HGET', KEYS[1], F_N) or '0') or 0
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  local times = {}
  local z = redis.call('ZRANGE', KEYS[6], 0, -1, 'WITHSCORES')
  for j = 1, #z, 2 do times[z[j]] = z[j + 1] end
  for c = 0, n - 1, 1000 do
    local seqs = {}
    for q = c, math.min(c + 999, n - 1) do seqs[#seqs + 1] = tostring(q) end
    local got = redis.call('HMGET', KEYS[5], unpack(seqs))
    local pl, tl = {}, {}
    for j, q in ipairs(seqs) do
      pl[j] = got[j] or ''  -- a missing record stays missing (empty) and keeps later seqs aligned
      tl[j] = times[q] or '0'
    end
    redis.call('RPUSH', KEYS[2], unpack(pl))
    redis.call('RPUSH', KEYS[4], unpack(tl))
  end
  local h = redis.call('HGETALL', KEYS[5])
  local ids = {}
  for j = 1, #h, 2 do
    if string.sub(h[j], 1, 1) == '#' then
      ids[#ids + 1] = string.sub(h[j], 2); ids[#ids + 1] = h[j + 1]
      if #ids >= 2000 then redis.call('HSET', KEYS[3], unpack(ids)); ids = {} end
    end
  end
  if #ids > 0 then redis.call('HSET', KEYS[3], unpack(ids)) end
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then
    for k = 2, 4 do
      if redis.call('EXISTS', KEYS[k]) == 1 then redis.call('PEXPIRE', KEYS[k], ttl) end
    end
  end
  redis.call('DEL', KEYS[5], KEYS[6])
  redis.call('HSET', KEYS[1], F_V, FORMAT)
end
"""
)

# KEYS: meta, user_state, user_index, user_created, [app_state, app_index, app_created]
# ARGV: now, ttl_ms, session_member, app_member, n_session, n_user, n_app, token,
#       then field/value pairs (session fields already carry the "s." prefix).
# Returns {0} when the session exists (created by someone else), else
# {1, user_state, app_state}; a retry of this very create (same token: the
# first reply was lost) finds its own session and answers {1, ...} again.
CREATE_SESSION = (
    LUA_PRELUDE
    + _CONTAINMENT
    + r"""
local app = {}
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], F_T) ~= ARGV[8] then return {0} end
  if #KEYS >= 7 then app = state_of(KEYS[5]) end
  return {1, state_of(KEYS[2]), app}
end
local now, ttl = ARGV[1], tonumber(ARGV[2])
local ns, nu, na = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local bad = wrong_type(KEYS[1], 'hash') or wrong_type(KEYS[3], 'zset') or wrong_type(KEYS[4], 'zset')
if not bad and nu > 0 then bad = wrong_type(KEYS[2], 'hash') end
if not bad and #KEYS >= 7 then
  bad = wrong_type(KEYS[6], 'zset') or wrong_type(KEYS[7], 'zset')
  if not bad and na > 0 then bad = wrong_type(KEYS[5], 'hash') end
end
if bad then return bad end
local i = 9
redis.call('HSET', KEYS[1], F_C, now, F_U, now, F_R, '0', F_N, '0', F_L, '', F_V, FORMAT, F_T, ARGV[8],
  F_M, '0')
for _ = 1, ns do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nu do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
redis.call('ZADD', KEYS[3], now, ARGV[3])
-- A creation index is written while it exists or the listing index holds no other session; else it
-- is missing (expired: the TTL is refreshed at creates only; or older than creation indexes) and
-- stays so: the next order="created" page rebuilds it whole, this session included.
local function created(index, listing, member)
  if redis.call('EXISTS', index) == 1 or redis.call('ZCARD', listing) <= 1 then
    redis.call('ZADD', index, now, member)
    if ttl > 0 then redis.call('PEXPIRE', index, ttl) end
  end
end
created(KEYS[4], KEYS[3], ARGV[3])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
if #KEYS >= 7 then
  for _ = 1, na do redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 1]); i = i + 2 end
  redis.call('ZADD', KEYS[6], now, ARGV[4])
  created(KEYS[7], KEYS[6], ARGV[4])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[6], ttl) end
  app = state_of(KEYS[5])
end
return {1, state_of(KEYS[2]), app}
"""
)

# Brings one session record to the current format (``adk-redis migrate``; the session scripts
# also do it on their first touch).  KEYS: meta, log, ids, times, legacy_events, legacy_times
# Returns 1 when the session exists.
UPGRADE_SESSION = (
    _SESSION_EVENTS
    + r"""
upgrade()
return redis.call('EXISTS', KEYS[1])
"""
)

# KEYS: meta, log, ids, times, legacy_events, legacy_times, user_state, user_index,
#       [app_state, app_index]
# ARGV: marker, session_last_update, session_last_event_id, event_id, payload,
#       timestamp, ttl_ms, session_member, app_member, n_session, n_user,
#       n_app, policy ('reject' | 'merge' | 'lww'), then field/value pairs.
# Returns {-1} missing session, {-2} stale writer (rejected), {-3, key...} stale
# writer whose delta writes keys written after its marker (merge conflict),
# {2, rev, update[, missed]} duplicate delivery (already stored, nothing changed),
# {1, rev, update[, missed[, lost key...]]} appended.  ``missed`` (merge and lww, when the
# marker was behind; else false) is {payloads since the marker, session meta, user state,
# app state}; ``lost`` (lww) the delta's keys whose value was kept (a later-timestamped write).
#
# Merge rule: every write of a state key through a session records the new
# revision in ``w.<key>``; a stale writer with marker m may append when no key of
# its delta has ``w.<key>`` > m.  Cost: one HMGET of the delta's keys.
#
# Last-writer-wins rule (lww): every append is stored (a stale one too, when its marker is
# valid); for each key of its delta, the timestamp of the event that last wrote the key
# (revision ``w.<key>`` -> its entry of the timestamps list) is compared with this event's:
# a later one keeps its value (the key is "lost" for this event), otherwise (earlier,
# equal, or never written through this session) this event's value is written.  Cost: one
# HMGET plus one LINDEX per key of the delta.
APPEND_EVENT = (
    _SESSION_EVENTS
    + r"""
local meta = redis.call('HMGET', KEYS[1], F_R, F_U, F_N, F_L, F_M)
if not meta[1] then return {-1} end
upgrade()
local rev, upd, n, last = meta[1], meta[2], tonumber(meta[3]), meta[4] or ''
local since = meta[5]
local merge = ARGV[13] == 'merge'
local lww = ARGV[13] == 'lww'
local function hmget(key, fields)  -- HMGET in chunks (Lua's unpack has a stack limit)
  local out = {}
  for c = 1, #fields, 4000 do
    local part = redis.call('HMGET', key, unpack(fields, c, math.min(c + 3999, #fields)))
    for _, v in ipairs(part) do out[#out + 1] = v end
  end
  return out
end
local ns, nu, na = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local function missed()
  local m = tonumber(ARGV[1])
  local first = math.max(n - (tonumber(rev) - m), 0)
  local payloads = {}
  if first < n then payloads = redis.call('LRANGE', KEYS[2], first, n - 1) end
  local app = {}
  if #KEYS >= 10 then app = state_of(KEYS[9]) end
  return {payloads, redis.call('HGETALL', KEYS[1]), state_of(KEYS[7]), app}
end
local seen = redis.call('HGET', KEYS[3], ARGV[4])
if seen and redis.call('LINDEX', KEYS[2], seen) == ARGV[5] then
  if (merge or lww) and ARGV[1] ~= '' and ARGV[1] ~= rev then return {2, rev, upd, missed()} end
  return {2, rev, upd}
end
local stale
if ARGV[1] ~= '' then
  stale = ARGV[1] ~= rev
else
  stale = tonumber(upd) > tonumber(ARGV[2]) and last ~= ARGV[3]
end
-- the state keys of this delta, as tracked in w.<key>
local keys = {}
local i = 14
for _ = 1, ns do keys[#keys + 1] = string.sub(ARGV[i], #P_STATE + 1); i = i + 2 end
for _ = 1, nu do keys[#keys + 1] = 'user:' .. ARGV[i]; i = i + 2 end
for _ = 1, na do keys[#keys + 1] = 'app:' .. ARGV[i]; i = i + 2 end
if stale and lww then
  local m = tonumber(ARGV[1])
  if m == nil or m > tonumber(rev) then return {-2} end
elseif stale then
  if not merge or ARGV[1] == '' or not since then return {-2} end
  local m = tonumber(ARGV[1])
  if m == nil or m < tonumber(since) or m > tonumber(rev) then return {-2} end
  if #keys > 0 then
    local fields = {}
    for j, k in ipairs(keys) do fields[j] = P_WRITE .. k end
    local revs = hmget(KEYS[1], fields)
    local bad = {-3}
    for j, r in ipairs(revs) do
      if r and tonumber(r) > m then bad[#bad + 1] = keys[j] end
    end
    if #bad > 1 then return bad end
  end
end
local bad = wrong_type(KEYS[8], 'zset')
if not bad and nu > 0 then bad = wrong_type(KEYS[7], 'hash') end
if not bad and #KEYS >= 10 then
  bad = wrong_type(KEYS[10], 'zset')
  if not bad and na > 0 then bad = wrong_type(KEYS[9], 'hash') end
end
if bad then return bad end
-- lww: the delta's keys whose last write has a later timestamp keep their value
local lost, lostlist = {}, {}
if lww and #keys > 0 then
  local fields = {}
  for j, k in ipairs(keys) do fields[j] = P_WRITE .. k end
  local revs = hmget(KEYS[1], fields)
  local off, mine = tonumber(rev) - n, tonumber(ARGV[6])
  for j, r in ipairs(revs) do
    local q = r and (tonumber(r) - 1 - off)
    if q and q >= 0 and q < n then
      local t = tonumber(redis.call('LINDEX', KEYS[4], q))
      if t and mine and t > mine then
        lost[keys[j]] = true
        lostlist[#lostlist + 1] = keys[j]
      end
    end
  end
end
local ts, ttl = ARGV[6], tonumber(ARGV[7])
local seq = tostring(n)
local newrev = tostring(tonumber(rev) + 1)
local report = nil
if stale then report = missed() end
redis.call('RPUSH', KEYS[2], ARGV[5])
redis.call('HSET', KEYS[3], ARGV[4], seq)
redis.call('RPUSH', KEYS[4], ts)
-- the record's fields, session state and write revisions: one HSET (in chunks for huge deltas)
local fields = {F_U, ts, F_R, newrev, F_N, tostring(n + 1), F_L, ARGV[4]}
if not since then fields[#fields + 1] = F_M; fields[#fields + 1] = rev end
i = 14
for j = 1, ns do
  if not lost[keys[j]] then fields[#fields + 1] = ARGV[i]; fields[#fields + 1] = ARGV[i + 1] end
  i = i + 2
end
for _, k in ipairs(keys) do
  if not lost[k] then fields[#fields + 1] = P_WRITE .. k; fields[#fields + 1] = newrev end
end
for c = 1, #fields, 4000 do
  redis.call('HSET', KEYS[1], unpack(fields, c, math.min(c + 3999, #fields)))
end
for _ = 1, nu do
  if not lost['user:' .. ARGV[i]] then redis.call('HSET', KEYS[7], ARGV[i], ARGV[i + 1]) end
  i = i + 2
end
redis.call('ZADD', KEYS[8], ts, ARGV[8])
if ttl > 0 then
  for k = 1, 4 do redis.call('PEXPIRE', KEYS[k], ttl) end
  redis.call('PEXPIRE', KEYS[8], ttl)
end
if #KEYS >= 10 then
  for _ = 1, na do
    if not lost['app:' .. ARGV[i]] then redis.call('HSET', KEYS[9], ARGV[i], ARGV[i + 1]) end
    i = i + 2
  end
  redis.call('ZADD', KEYS[10], ts, ARGV[9])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[10], ttl) end
end
if #lostlist > 0 then
  local out = {1, newrev, ts, report or false}
  for _, k in ipairs(lostlist) do out[#out + 1] = k end
  return out
end
if report then return {1, newrev, ts, report} end
return {1, newrev, ts}
"""
)

# The app-level half of create/append on a cluster (KEYS in the {app} slot).
# KEYS: app_state, app_index, [app_created (create only)]   ARGV: score, app_member, ttl, field/value pairs...
APP_TOUCH = r"""
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for k = 2, #KEYS do
  -- the creation index (k = 3): only while it exists or the app has no other session (CREATE_SESSION)
  if k == 2 or redis.call('EXISTS', KEYS[k]) == 1 or redis.call('ZCARD', KEYS[2]) <= 1 then
    redis.call('ZADD', KEYS[k], ARGV[1], ARGV[2])
    if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[k], ARGV[3]) end
  end
end
return 1
"""

# KEYS: meta, log, ids, times, legacy_events, legacy_times, user_state, [app_state]
# ARGV: num_recent ('' = all), after_timestamp ('' = no filter)
# Returns nil when missing, else {meta, payloads, user_state, app_state}.
GET_SESSION = (
    _SESSION_EVENTS
    + r"""
upgrade()
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then return false end
local n = tonumber(redis.call('HGET', KEYS[1], F_N))
local first = 0
if ARGV[1] ~= '' then first = math.max(0, n - tonumber(ARGV[1])) end
local payloads = {}
if ARGV[1] == '0' or first >= n then
  payloads = {}
elseif ARGV[2] ~= '' then
  -- the events at or after the timestamp, in append order (a scan of the timestamps list)
  local after = tonumber(ARGV[2])
  local ts = redis.call('LRANGE', KEYS[4], first, n - 1)
  local hit = nil
  for j, t in ipairs(ts) do
    if (tonumber(t) or 0) >= after then hit = j; break end
  end
  if hit then
    local got = redis.call('LRANGE', KEYS[2], first + hit - 1, n - 1)
    for j, p in ipairs(got) do
      if (tonumber(ts[hit + j - 1]) or 0) >= after then payloads[#payloads + 1] = p end
    end
  end
else
  payloads = redis.call('LRANGE', KEYS[2], first, n - 1)
  -- fewer records than the count says: report the missing ones (nil) rather than return less
  for _ = #payloads + 1, n - first do payloads[#payloads + 1] = false end
end
local app = {}
if #KEYS >= 8 then app = state_of(KEYS[8]) end
return {meta, payloads, state_of(KEYS[7]), app}
"""
)

# KEYS: meta, log, ids, times, legacy_events, legacy_times, user_index, [app_index], then the
#       creation indexes (adk_redis.sessions._pages): user_created, [app_created]
#       (10 keys, or 8 on a cluster: the caller removes the app members)
# ARGV: session_member, app_member
DELETE_SESSION = r"""
local existed = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('ZREM', KEYS[7], ARGV[1])
if #KEYS >= 10 then redis.call('ZREM', KEYS[8], ARGV[2]) end
-- creation indexes
if #KEYS >= 10 then redis.call('ZREM', KEYS[10], ARGV[2]) end
redis.call('ZREM', KEYS[#KEYS >= 10 and 9 or 8], ARGV[1])
return existed
"""

# Writes one whole session (import, migrate, backup restore): the one writer of
# complete session records besides create/append.  Never overwrites.
# KEYS: meta, log, ids, times, legacy_events, legacy_times, user_index, [app_index], then the
#       creation indexes (adk_redis.sessions._pages): user_created, [app_created]
#       (10 keys, or 8 on a cluster: the caller writes the app members)
# ARGV: created, updated, ttl_ms, session_member, app_member, n_state, n_events,
#       state field/value pairs ("s."-prefixed), then id, payload, timestamp per event.
# Returns 0 when the session exists (nothing written), 1 when written.
RESTORE_SESSION = (
    LUA_PRELUDE
    + r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local upd, ttl = ARGV[2], tonumber(ARGV[3])
local ns, ne = tonumber(ARGV[6]), tonumber(ARGV[7])
local i, last = 8, ''
for _ = 1, ns do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
for c = 0, ne - 1, 1000 do
  local pl, ids, tl = {}, {}, {}
  for seq = c, math.min(c + 999, ne - 1) do
    pl[#pl + 1] = ARGV[i + 1]
    ids[#ids + 1] = ARGV[i]; ids[#ids + 1] = tostring(seq)
    tl[#tl + 1] = ARGV[i + 2]
    last = ARGV[i]
    i = i + 3
  end
  redis.call('RPUSH', KEYS[2], unpack(pl))
  redis.call('HSET', KEYS[3], unpack(ids))
  redis.call('RPUSH', KEYS[4], unpack(tl))
end
redis.call('HSET', KEYS[1], F_C, ARGV[1], F_U, upd, F_R, tostring(ne), F_N, tostring(ne),
  F_L, last, F_V, FORMAT, F_M, tostring(ne))
redis.call('ZADD', KEYS[7], upd, ARGV[4])
if ttl > 0 then
  for k = 1, 4 do
    if redis.call('EXISTS', KEYS[k]) == 1 then redis.call('PEXPIRE', KEYS[k], ttl) end
  end
  redis.call('PEXPIRE', KEYS[7], ttl)
end
if #KEYS >= 10 then
  redis.call('ZADD', KEYS[8], upd, ARGV[5])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[8], ttl) end
end
-- creation indexes, scored by the creation time; as in CREATE_SESSION, one that is missing while
-- the listing index holds other sessions stays missing (the next page rebuilds it)
local function created(index, listing, member)
  if redis.call('EXISTS', index) == 1 or redis.call('ZCARD', listing) <= 1 then
    redis.call('ZADD', index, ARGV[1], member)
    if ttl > 0 then redis.call('PEXPIRE', index, ttl) end
  end
end
created(KEYS[#KEYS >= 10 and 9 or 8], KEYS[7], ARGV[4])
if #KEYS >= 10 then created(KEYS[10], KEYS[8], ARGV[5]) end
return 1
"""
)

# One page of a session index (adk_redis.sessions._pages), keyset-paginated: the entries after the
# cursor (score, member) in the index's order (ascending by score then member, or descending), found
# in O(log n): ZRANK of the cursor member when it is still there at that score, else a binary search
# among the ties of that score (ranks from ZCOUNT); then ZRANGE/ZREVRANGE by rank, limit + 1 entries
# (the extra one tells whether another page follows).
# KEYS: index, [listing index: a creation index missing while this one exists is to be rebuilt]
# ARGV: 'asc' | 'desc', cursor score ('' = from the start), cursor member, limit
# Returns {member, score, member, score, ...}, or {{'rebuild'}}.
PAGE_INDEX = r"""
if #KEYS >= 2 and redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  return {{'rebuild'}}
end
local asc, s, m, n = ARGV[1] == 'asc', ARGV[2], ARGV[3], tonumber(ARGV[4])
local function before(a, b)  -- a < b byte-wise, as Redis orders ties (Lua's < would use the locale)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local function range(a, b)
  if asc then return redis.call('ZRANGE', KEYS[1], a, b, 'WITHSCORES') end
  return redis.call('ZREVRANGE', KEYS[1], a, b, 'WITHSCORES')
end
if s == '' then return range(0, n) end
local at = redis.call('ZSCORE', KEYS[1], m)
local p
if at and tonumber(at) == tonumber(s) then
  if asc then p = redis.call('ZRANK', KEYS[1], m) else p = redis.call('ZREVRANK', KEYS[1], m) end
  p = p + 1
else
  -- the cursor entry is gone: the ties of score s sit at ranks [lo, hi), members in order
  local lo
  if asc then lo = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. s)
  else lo = redis.call('ZCOUNT', KEYS[1], '(' .. s, '+inf') end
  local hi = lo + redis.call('ZCOUNT', KEYS[1], s, s)
  while lo < hi do  -- first tie after m
    local mid = math.floor((lo + hi) / 2)
    local x = range(mid, mid)[1]
    if (asc and before(m, x)) or (not asc and before(x, m)) then hi = mid else lo = mid + 1 end
  end
  p = lo
end
return range(p, p + n)
"""

# The records of a listing or a page, for sessions of one user (one slot): the user state and,
# per session, only what a listing returns (no write revisions, no event fields).
# KEYS: user_state, [app_state (standalone servers: ARGV[1] = 'app')], meta...
# Returns {user_state pairs | {'!', error}, [app_state likewise], then per meta: {} (missing) |
#          {'!', error} (wrong type) | {updated, revision, state field/value pairs ("s."-prefixed)...}}.
LIST_SUMMARIES = (
    LUA_PRELUDE
    + r"""
local out = {}
local first = 2
if ARGV[1] == 'app' then first = 3 end
for k = 1, first - 1 do
  local h = redis.pcall('HGETALL', KEYS[k])
  if h.err then out[k] = {'!', h.err} else out[k] = h end
end
local np = #P_STATE
for k = first, #KEYS do
  local h = redis.pcall('HGETALL', KEYS[k])
  if h.err then
    out[k] = {'!', h.err}
  elseif #h == 0 then
    out[k] = {}
  else
    local r = {false, false}
    for i = 1, #h, 2 do
      local f = h[i]
      if f == F_U then r[1] = h[i + 1]
      elseif f == F_R then r[2] = h[i + 1]
      elseif string.sub(f, 1, np) == P_STATE then r[#r + 1] = f; r[#r + 1] = h[i + 1] end
    end
    out[k] = r
  end
end
return out
"""
)
