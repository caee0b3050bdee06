"""Lua scripts: every read-decide-write on the shared breaker state happens inside Redis.

Versions are ``max(version + 1, now in ms)``: strictly increasing within one store and still
increasing after the store lost its state, so an old transition never looks newer. Times
are passed in as the caller's strings and stored verbatim, so they round-trip exactly.
"""

from __future__ import annotations

SYNC = """
-- KEYS: 1 state hash, 2 failure window zset, 3 probe reservations zset
-- ARGV: 1 channel, 2 worker, 3 now, 4 window seconds, 5 threshold, 6 claim base version,
--       7 claim ('' | 'open' | 'closed'), 8 claim time, 9 claim opened_at, 10 successes,
--       11.. failures as (time, member) pairs
local now = tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'state', 'version', 'opened_at', 'changed_at')
local state = h[1] or 'closed'
local version = tonumber(h[2] or '0')
local opened_at = h[3] or ''
local changed_at = h[4] or '0'

local function transition(new_state, new_opened_at)
  version = math.max(version + 1, math.floor(now * 1000))
  state, opened_at, changed_at = new_state, new_opened_at, ARGV[3]
  local v = string.format('%d', version)
  redis.call('HSET', KEYS[1], 'state', state, 'version', v, 'opened_at', opened_at,
             'changed_at', changed_at, 'changed_by', ARGV[2])
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('PUBLISH', ARGV[1], cjson.encode({state = state, version = v,
             opened_at = opened_at, by = ARGV[2]}))
end

local claim = ARGV[7]
if claim ~= '' and not (claim == 'closed' and state == 'closed') then
  local current = tonumber(ARGV[6]) == version
  local newer_open = claim == 'open' and state == 'closed'
                     and tonumber(ARGV[8]) > tonumber(changed_at)
  if current or newer_open then
    local new_opened_at = ''
    if claim == 'open' then new_opened_at = ARGV[9] end
    transition(claim, new_opened_at)
  end
end

local successes = tonumber(ARGV[10])
if successes > 0 then redis.call('HINCRBY', KEYS[1], 'successes', successes) end
local n = (#ARGV - 10) / 2
if n > 0 then redis.call('HINCRBY', KEYS[1], 'failures', n) end

local count = 0
if state == 'closed' then
  local window = tonumber(ARGV[4])
  local oldest = now - window
  for i = 11, #ARGV, 2 do
    if tonumber(ARGV[i]) > oldest then redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1]) end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', oldest)
  count = redis.call('ZCARD', KEYS[2])
  if count >= tonumber(ARGV[5]) then
    transition('open', ARGV[3])
  elseif count > 0 then
    redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000) + 1000)
  end
end
return {state, string.format('%d', version), opened_at, changed_at, count}
"""

RESERVE = """
-- KEYS: 1 state hash, 2 probe reservations zset (member = holder, score = expiry)
-- ARGV: 1 version the holder saw open, 2 holder, 3 now, 4 ttl seconds, 5 max probes
local h = redis.call('HMGET', KEYS[1], 'state', 'version')
if h[1] ~= 'open' or h[2] ~= ARGV[1] then return 0 end
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local held = redis.call('ZSCORE', KEYS[2], ARGV[2])
if not held and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[2])
redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(ARGV[4]) * 1000) + 1000)
return 1
"""
