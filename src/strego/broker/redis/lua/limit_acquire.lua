-- Take a concurrency slot for one delivery; when every slot is held, book the task a
-- time to come back, estimated from how long slots are held (mean hold / limit per
-- booked task), so parked tasks return about as fast as slots free.
-- KEYS: one limiter key's keys (LK in _limits.lua)
-- ARGV: 1 member ('<queue>|<entry id>|<delivery count>')  2 limit  3 lease ms
--       4 limiter key  5 booking member ('<queue>|<task id>')
-- Returns 0 when the slot is held (already held by this very delivery: renewed, a
-- no-op), else the wait in ms.
local now = now_ms()
local member, limit, lease, key, who = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  ARGV[4], ARGV[5]
local state, holders, acquired, parked = KEYS[LK.state], KEYS[LK.holders],
  KEYS[LK.acquired], KEYS[LK.parked]
lim_trim_holders(holders, acquired, now)
lim_touch(KEYS, 1, key, now)
if redis.call('ZSCORE', holders, member) then
  redis.call('ZADD', holders, now + lease, member)
  return 0
end
redis.call('ZREMRANGEBYSCORE', parked, '-inf', now - PARKED_FORGET_MS)
local booked = tonumber(redis.call('ZSCORE', parked, who))
if booked and booked > now then return math.ceil(booked - now) end
if redis.call('ZCARD', holders) < limit then
  redis.call('ZADD', holders, now + lease, member)
  redis.call('HSET', acquired, member, now)
  if booked then redis.call('ZREM', parked, who) end
  incr(KEYS[LK.counters], 'granted', 1)
  lim_expire(KEYS, 1, now, now + lease)
  return 0
end
-- Slots free about once per (mean hold / limit): book returns that far apart, so
-- most find a free slot. A task whose booking came and found none full is booked
-- again the same way (returning all at once, the overdue ones would only collide).
local step = math.max(5, (lim_num(state, 'd') or 100) / limit)
local at = math.max(lim_num(state, 'b') or 0, now + step)
redis.call('HSET', state, 'b', lim_fmt(at + step))
redis.call('ZADD', parked, at, who)
local wait = math.ceil(at - now)
lim_note_wait(KEYS, 1, key, now, wait)
lim_expire(KEYS, 1, now, math.max(at, now + lease))
return wait
