"""Lua scripts: each hot-path write or read is one atomic server-side step.

Scripts receive every key they touch in KEYS (built by :mod:`adk_redis.keys`),
so they are valid on Redis Cluster when the caller passes keys of one slot.
The trailing app-level keys are optional: on a cluster the service passes
them to a second step that runs in the app's slot.
"""

from __future__ import annotations

from .session_layout import LUA_PRELUDE

# KEYS: meta, user_state, user_index, [app_state, app_index]
# ARGV: now, ttl_ms, session_member, app_member, n_session, n_user, n_app, token,
#       then field/value pairs (session fields already carry the "s." prefix).
# Returns {0} when the session exists (created by someone else), else
# {1, user_state, app_state}; a retry of this very create (same token: the
# first reply was lost) finds its own session and answers {1, ...} again.
CREATE_SESSION = LUA_PRELUDE + r"""
local app = {}
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], F_T) ~= ARGV[8] then return {0} end
  if #KEYS >= 5 then app = redis.call('HGETALL', KEYS[4]) end
  return {1, redis.call('HGETALL', KEYS[2]), app}
end
local now, ttl = ARGV[1], tonumber(ARGV[2])
local ns, nu, na = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local i = 9
redis.call('HSET', KEYS[1], F_C, now, F_U, now, F_R, '0', F_N, '0', F_L, '', F_V, FORMAT, F_T, ARGV[8],
  F_M, '0')
for _ = 1, ns do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nu do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
redis.call('ZADD', KEYS[3], now, ARGV[3])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
if #KEYS >= 5 then
  for _ = 1, na do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]); i = i + 2 end
  redis.call('ZADD', KEYS[5], now, ARGV[4])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[5], ttl) end
  app = redis.call('HGETALL', KEYS[4])
end
return {1, redis.call('HGETALL', KEYS[2]), app}
"""

# KEYS: meta, events, times, user_state, user_index, [app_state, app_index]
# ARGV: marker, session_last_update, session_last_event_id, event_id, payload,
#       timestamp, ttl_ms, session_member, app_member, n_session, n_user,
#       n_app, policy ('reject' | 'merge'), then field/value pairs.
# Returns {-1} missing session, {-2} stale writer (rejected), {-3, key...} stale
# writer whose delta writes keys written after its marker (merge conflict),
# {2, rev, update[, missed]} duplicate delivery (already stored, nothing changed),
# {1, rev, update[, missed]} appended.  ``missed`` (merge only, when the marker was
# behind) is {payloads since the marker, session meta, user state, app state}.
#
# Merge rule: every write of a state key through a session records the new
# revision in ``w.<key>``; a stale writer with marker m may append when no key of
# its delta has ``w.<key>`` > m.  Cost: one HMGET of the delta's keys.
APPEND_EVENT = LUA_PRELUDE + r"""
local meta = redis.call('HMGET', KEYS[1], F_R, F_U, F_N, F_L, F_M)
if not meta[1] then return {-1} end
local rev, upd, n, last = meta[1], meta[2], tonumber(meta[3]), meta[4] or ''
local since = meta[5]
local merge = ARGV[13] == 'merge'
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
  local first = n - (tonumber(rev) - m)
  local seqs = {}
  for s = math.max(first, 0), n - 1 do seqs[#seqs + 1] = tostring(s) end
  local payloads = hmget(KEYS[2], seqs)
  local app = {}
  if #KEYS >= 7 then app = redis.call('HGETALL', KEYS[6]) end
  return {payloads, redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[4]), app}
end
local seen = redis.call('HGET', KEYS[2], '#' .. ARGV[4])
if seen and redis.call('HGET', KEYS[2], seen) == ARGV[5] then
  if merge and ARGV[1] ~= '' and ARGV[1] ~= rev then return {2, rev, upd, missed()} end
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
if stale then
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
local ts, ttl = ARGV[6], tonumber(ARGV[7])
local seq = tostring(n)
local newrev = tostring(tonumber(rev) + 1)
local report = nil
if stale then report = missed() end
redis.call('HSET', KEYS[2], seq, ARGV[5], '#' .. ARGV[4], seq)
redis.call('ZADD', KEYS[3], ts, seq)
-- the record's fields, session state and write revisions: one HSET (in chunks for huge deltas)
local fields = {F_U, ts, F_R, newrev, F_N, tostring(n + 1), F_L, ARGV[4]}
if not since then fields[#fields + 1] = F_M; fields[#fields + 1] = rev end
i = 14
for _ = 1, ns do fields[#fields + 1] = ARGV[i]; fields[#fields + 1] = ARGV[i + 1]; i = i + 2 end
for _, k in ipairs(keys) do fields[#fields + 1] = P_WRITE .. k; fields[#fields + 1] = newrev end
for c = 1, #fields, 4000 do
  redis.call('HSET', KEYS[1], unpack(fields, c, math.min(c + 3999, #fields)))
end
for _ = 1, nu do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]); i = i + 2 end
redis.call('ZADD', KEYS[5], ts, ARGV[8])
if ttl > 0 then
  for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], ttl) end
  redis.call('PEXPIRE', KEYS[5], ttl)
end
if #KEYS >= 7 then
  for _ = 1, na do redis.call('HSET', KEYS[6], ARGV[i], ARGV[i + 1]); i = i + 2 end
  redis.call('ZADD', KEYS[7], ts, ARGV[9])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[7], ttl) end
end
if report then return {1, newrev, ts, report} end
return {1, newrev, ts}
"""

# The app-level half of create/append on a cluster (KEYS in the {app} slot).
# KEYS: app_state, app_index   ARGV: score, app_member, ttl, field/value pairs...
APP_TOUCH = r"""
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 1
"""

# KEYS: meta, events, times, user_state, [app_state]
# ARGV: num_recent ('' = all), after_timestamp ('' = no filter)
# Returns nil when missing, else {meta, payloads, user_state, app_state}.
GET_SESSION = LUA_PRELUDE + r"""
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then return false end
local n = tonumber(redis.call('HGET', KEYS[1], F_N))
local first = 0
if ARGV[1] ~= '' then first = math.max(0, n - tonumber(ARGV[1])) end
local seqs = {}
if ARGV[1] == '0' then
  seqs = {}
elseif ARGV[2] ~= '' then
  local hits = redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[2], '+inf')
  for _, s in ipairs(hits) do
    if tonumber(s) >= first then seqs[#seqs + 1] = tonumber(s) end
  end
  table.sort(seqs)
else
  for s = first, n - 1 do seqs[#seqs + 1] = s end
end
local payloads = {}
local chunk = 1000
for c = 1, #seqs, chunk do
  local part = {}
  for j = c, math.min(c + chunk - 1, #seqs) do part[#part + 1] = tostring(seqs[j]) end
  local got = redis.call('HMGET', KEYS[2], unpack(part))
  for _, p in ipairs(got) do payloads[#payloads + 1] = p end
end
local app = {}
if #KEYS >= 5 then app = redis.call('HGETALL', KEYS[5]) end
return {meta, payloads, redis.call('HGETALL', KEYS[4]), app}
"""

# KEYS: meta, events, times, user_index, [app_index]   ARGV: session_member, app_member
DELETE_SESSION = r"""
local existed = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
if #KEYS >= 5 then redis.call('ZREM', KEYS[5], ARGV[2]) end
return existed
"""

# Writes one whole session (import, migrate, backup restore): the one writer of
# complete session records besides create/append.  Never overwrites.
# KEYS: meta, events, times, user_index, [app_index]
# ARGV: created, updated, ttl_ms, session_member, app_member, n_state, n_events,
#       state field/value pairs ("s."-prefixed), then id, payload, timestamp per event.
# Returns 0 when the session exists (nothing written), 1 when written.
RESTORE_SESSION = LUA_PRELUDE + r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local upd, ttl = ARGV[2], tonumber(ARGV[3])
local ns, ne = tonumber(ARGV[6]), tonumber(ARGV[7])
local i, last = 8, ''
for _ = 1, ns do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
for seq = 0, ne - 1 do
  local s = tostring(seq)
  redis.call('HSET', KEYS[2], s, ARGV[i + 1], '#' .. ARGV[i], s)
  redis.call('ZADD', KEYS[3], ARGV[i + 2], s)
  last = ARGV[i]
  i = i + 3
end
redis.call('HSET', KEYS[1], F_C, ARGV[1], F_U, upd, F_R, tostring(ne), F_N, tostring(ne),
  F_L, last, F_V, FORMAT, F_M, tostring(ne))
redis.call('ZADD', KEYS[4], upd, ARGV[4])
if ttl > 0 then
  for k = 1, 4 do redis.call('PEXPIRE', KEYS[k], ttl) end
end
if #KEYS >= 5 then
  redis.call('ZADD', KEYS[5], upd, ARGV[5])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[5], ttl) end
end
return 1
"""
