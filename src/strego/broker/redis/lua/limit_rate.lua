-- Ask a rate limiter (GCRA) for one start now; over the limit, book the task a time
-- to come back, behind every task booked before it (so parked tasks return spread
-- out, one per interval, instead of all at once).
-- KEYS: one limiter key's keys (LK in _limits.lua)
-- ARGV: 1 member ('<queue>|<task id>')  2 interval ms (per / limit)  3 tau ms
--       ((burst - 1) * interval)  4 limiter key (for the registry and recent waits)
-- Returns 0 when the task may start now, else the wait in ms. Asking again for the
-- same member before its time gives the same answer (a worker that crashed between
-- this and the park: the task is reclaimed and asks again; nothing is lost).
local now = now_ms()
local member, interval, tau, key = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local state, parked = KEYS[LK.state], KEYS[LK.parked]
redis.call('ZREMRANGEBYSCORE', parked, '-inf', now - PARKED_FORGET_MS)
local room, tat = lim_rate_room(state, now, interval, tau)
local booked = tonumber(redis.call('ZSCORE', parked, member))
local book = lim_num(state, 'b') or 0
lim_touch(KEYS, 1, key, now)
if booked and booked > now then return math.ceil(booked - now) end
if room > 0 and (booked or book <= now) then
  redis.call('HSET', state, 't', lim_fmt(tat + interval))
  if booked then redis.call('ZREM', parked, member) end
  incr(KEYS[LK.counters], 'granted', 1)
  lim_expire(KEYS, 1, now, math.max(tat + interval, book))
  return 0
end
local at
if booked then
  -- Its time came but another start took the slot: the next conforming time,
  -- keeping its place ahead of the tasks booked after it.
  at = math.max(tat - tau, now + 1)
else
  at = math.max(book, tat - tau, now + 1)
  redis.call('HSET', state, 'b', lim_fmt(at + interval))
end
redis.call('ZADD', parked, at, member)
local wait = math.ceil(at - now)
lim_note_wait(KEYS, 1, key, now, wait)
lim_expire(KEYS, 1, now, math.max(at + interval, tat))
return wait
