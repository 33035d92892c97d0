-- Global limits (docs/limits.md): helpers for limit_*.lua and the queue-wide limits
-- inside fetch.lua. Prepended after _lib.lua to those scripts only.
-- One limiter key's keys, in this order (LK below); all in the limiter's slot:
--   1 state hash: t = GCRA theoretical arrival time (ms), b = booking pointer (ms, the
--     next time a parked task is told to come back), d = mean hold time (ms, concurrency)
--   2 holders zset: member -> lease end (ms) (concurrency)
--   3 acquired hash: member -> acquired at (ms) (concurrency)
--   4 parked zset: member -> the time it was told to come back (ms)
--   5 counters hash of the limiter: granted, held
--   6 recent waits list of the limiter: '<at ms>:<wait ms>:<key>', capped
--   7 keys zset of the limiter: limiter key -> last use (ms), capped
-- Members: a concurrency slot is '<queue>|<entry id>|<delivery count>' (one delivery:
-- acquiring again is a no-op); a rate booking is '<queue>|<task id>'.
local LK = {state = 1, holders = 2, acquired = 3, parked = 4, counters = 5, waits = 6,
            keys = 7}
local LIMIT_KEYS = 7
local PARKED_FORGET_MS = 60000  -- a booking this overdue belongs to a task that is gone
local KEEP_WAITS = 50
local KEEP_KEYS = 1000

local function lim_fmt(ms) return string.format('%.4f', ms) end

-- Redis' clock in ms with its microseconds: a limit of 1000/s and more needs them.
local function lim_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

-- A wait in whole microseconds (what the scripts return), at least 1.
local function lim_us(ms) return math.max(1, math.ceil(ms * 1000)) end

-- Count on the limiter's counters; they live a day from their creation.
local function lim_count(counters, field, n)
  local ok, v = pcall(redis.call, 'HINCRBY', counters, field, n)
  if not ok then
    redis.call('DEL', counters)
    v = redis.call('HINCRBY', counters, field, n)
  end
  if v == n then redis.call('PEXPIRE', counters, 86400000) end
end

-- Keep every key of a limiter key alive while it may matter, and no longer.
local function lim_expire(k, base, now, until_ms)
  local ttl = math.floor(math.max(until_ms - now, 0)) + 3600000
  for i = 1, 4 do redis.call('PEXPIRE', k[base + i - 1], ttl) end
  redis.call('PEXPIRE', k[base + LK.waits - 1], 86400000)
end

-- The rate state: arrival time and booking pointer (absent: nil, 0). A key holding
-- garbage (someone wrote it) is reset, never an error.
local function lim_rate_state(state)
  local ok, v = pcall(redis.call, 'HMGET', state, 't', 'b')
  if not ok then
    redis.call('DEL', state)
    return nil, 0
  end
  return tonumber(v[1]), tonumber(v[2]) or 0
end

local function lim_touch(k, base, key, now)
  local keys = k[base + LK.keys - 1]
  redis.call('ZADD', keys, now, key)
  if redis.call('ZCARD', keys) > KEEP_KEYS then
    redis.call('ZREMRANGEBYRANK', keys, 0, -KEEP_KEYS - 1)
  end
  redis.call('PEXPIRE', keys, 86400000)
end

local function lim_note_wait(k, base, key, now, wait_ms)
  lim_count(k[base + LK.counters - 1], 'held', 1)
  local waits = k[base + LK.waits - 1]
  redis.call('LPUSH', waits, string.format('%d:%d:%s', now, math.ceil(wait_ms), key))
  redis.call('LTRIM', waits, 0, KEEP_WAITS - 1)
  lim_touch(k, base, key, now)
end

-- A field holding garbage (someone wrote the key) reads as absent, never an error.
local function lim_num(hash, field)
  local ok, v = pcall(redis.call, 'HGET', hash, field)
  if not ok then
    redis.call('DEL', hash)
    return nil
  end
  return tonumber(v)
end

-- GCRA: how many starts conform now (0..burst) and the arrival time they count from.
local function lim_rate_room(state, now, interval, tau)
  local tat = lim_num(state, 't') or now
  if tat < now then tat = now end
  if now < tat - tau then return 0, tat end
  -- (+1e-6: tau is (burst - 1) * interval in decimal; 0.19 / 0.01 is 18.999...)
  return math.floor((now - (tat - tau)) / interval + 1e-6) + 1, tat
end

-- Drop expired concurrency holders (a crashed worker's slots), bounded per call.
local function lim_trim_holders(holders, acquired, now)
  local ok, old = pcall(redis.call, 'ZRANGEBYSCORE', holders, '-inf', now, 'LIMIT', 0, 200)
  if not ok then
    redis.call('DEL', holders, acquired)
    return
  end
  for _, m in ipairs(old) do
    redis.call('ZREM', holders, m)
    redis.call('HDEL', acquired, m)
  end
end

-- Queue-wide limits inside fetch.lua. KEYS from `first`, LIMIT_KEYS per limit; ARGV
-- from `arg`, 4 per limit: kind ('r' rate: interval ms, tau ms, burst; 'c'
-- concurrency: limit, lease ms, unused). Returns how many entries may be read now
-- (<= need), and when none, the wait in microseconds.
local function lim_queue_room(k, first, a, arg, need, now)
  local room, wait = need, nil
  local i, j = first, arg
  while a[j] do
    local kind, p1, p2 = a[j], tonumber(a[j + 1]), tonumber(a[j + 2])
    local n, w
    if kind == 'r' then
      local tat
      n, tat = lim_rate_room(k[i], now, p1, p2)
      w = tat - p2 - now
    else
      lim_trim_holders(k[i + 1], k[i + 2], now)
      n = p1 - redis.call('ZCARD', k[i + 1])
      w = math.min(1000, math.max(1, (lim_num(k[i], 'd') or 100) / p1))
    end
    if n < room then room = math.max(n, 0) end
    if n <= 0 and (not wait or w > wait) then wait = w end
    i, j = i + LIMIT_KEYS, j + 4
  end
  if room <= 0 then
    i, j = first, arg
    while a[j] do
      lim_note_wait(k, i, '', now, wait)
      i, j = i + LIMIT_KEYS, j + 4
    end
  end
  return room, lim_us(wait or 0)
end

-- Spend the queue-wide limits on the entries read: out is fetch.lua's flat list
-- (band, entry id, fields, ...).
local function lim_queue_take(k, first, a, arg, out, queue, now)
  local taken = #out / 3
  local i, j = first, arg
  while a[j] do
    local kind, p1, p2 = a[j], tonumber(a[j + 1]), tonumber(a[j + 2])
    if kind == 'r' then
      local tat = lim_num(k[i], 't') or now
      if tat < now then tat = now end
      redis.call('HSET', k[i], 't', lim_fmt(tat + taken * p1))
      redis.call('PEXPIRE', k[i], math.floor(tat + taken * p1 - now) + 3600000)
    else
      for e = 2, #out, 3 do
        local member = queue .. '|' .. out[e] .. '|1'
        redis.call('ZADD', k[i + 1], now + p2, member)
        redis.call('HSET', k[i + 2], member, now)
      end
      redis.call('PEXPIRE', k[i + 1], p2 + 3600000)
      redis.call('PEXPIRE', k[i + 2], p2 + 3600000)
    end
    lim_count(k[i + LK.counters - 1], 'granted', taken)
    i, j = i + LIMIT_KEYS, j + 4
  end
end
