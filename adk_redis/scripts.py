"""Lua scripts: each hot-path write or read is one atomic server-side step.

Scripts receive every key they touch in KEYS (built by :mod:`adk_redis.keys`),
so they are valid on Redis Cluster when the caller passes keys of one slot.
The trailing app-level keys are optional: on a cluster the service passes
them to a second step that runs in the app's slot.
"""

from __future__ import annotations

# KEYS: meta, user_state, user_index, [app_state, app_index]
# ARGV: now, ttl_ms, session_member, app_member, n_session, n_user, n_app,
#       then field/value pairs (session fields already carry the "s." prefix).
CREATE_SESSION = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
local now, ttl = ARGV[1], tonumber(ARGV[2])
local ns, nu, na = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local i = 8
redis.call('HSET', KEYS[1], '_c', now, '_u', now, '_r', '0', '_n', '0', '_l', '', '_v', '1')
for _ = 1, ns do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, nu do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
redis.call('ZADD', KEYS[3], now, ARGV[3])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
local app = {}
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
#       n_app, then field/value pairs.
# Returns {-1} missing session, {-2} stale writer, {2, rev, update} duplicate
# delivery (already stored, nothing changed), {1, rev, update} appended.
APPEND_EVENT = r"""
local meta = redis.call('HMGET', KEYS[1], '_r', '_u', '_n', '_l')
if not meta[1] then return {-1} end
local rev, upd, n, last = meta[1], meta[2], tonumber(meta[3]), meta[4] or ''
local seen = redis.call('HGET', KEYS[2], '#' .. ARGV[4])
if seen and redis.call('HGET', KEYS[2], seen) == ARGV[5] then return {2, rev, upd} end
if ARGV[1] ~= '' then
  if ARGV[1] ~= rev then return {-2} end
elseif tonumber(upd) > tonumber(ARGV[2]) and last ~= ARGV[3] then
  return {-2}
end
local ts, ttl = ARGV[6], tonumber(ARGV[7])
local seq = tostring(n)
local newrev = tostring(tonumber(rev) + 1)
redis.call('HSET', KEYS[2], seq, ARGV[5], '#' .. ARGV[4], seq)
redis.call('ZADD', KEYS[3], ts, seq)
redis.call('HSET', KEYS[1], '_u', ts, '_r', newrev, '_n', tostring(n + 1), '_l', ARGV[4])
local ns, nu, na = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local i = 13
for _ = 1, ns do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
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
GET_SESSION = r"""
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then return false end
local n = tonumber(redis.call('HGET', KEYS[1], '_n'))
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
