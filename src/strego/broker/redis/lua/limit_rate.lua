-- Ask a rate limiter (GCRA) for starts, for one or many tasks of one limiter key.
-- A task that may wait in its worker gets a reservation: the next conforming start
-- time, when it is at most `max wait` away (the worker sleeps until then and starts,
-- without asking again, so starts keep their spacing however late the worker is).
-- Any other refused task is told when to come back (it is parked and asks again),
-- booked behind every task told so before it: parked tasks return spread out.
-- KEYS: one limiter key's keys (LK in _limits.lua)
-- ARGV: 1 interval ms (per / limit)  2 tau ms ((burst - 1) * interval)  3 limiter key
--       (for the registry and recent waits), then per task 2 values: member
--       ('<queue>|<task id>'), how long it may wait in its worker (ms; 0: not at all)
-- Returns per task: 0 start now; > 0 reserved: start in this many microseconds;
-- < 0 come back in minus this many microseconds. Asking again for a member before the
-- time it was told gives the same answer (a worker that crashed between this and the
-- park: the task is reclaimed and asks again; nothing is lost).
local now = lim_now()
local interval, tau, key = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local state, parked = KEYS[LK.state], KEYS[LK.parked]
local stored, book = lim_rate_state(state)
local tat = stored or now
local recent = book > now - PARKED_FORGET_MS  -- someone was told to come back lately
local out, granted, told, booked_more = {}, 0, 0, false
for i = 4, #ARGV, 2 do
  local member, max_wait = ARGV[i], tonumber(ARGV[i + 1])
  local booked = recent and tonumber(redis.call('ZSCORE', parked, member))
  if tat < now then tat = now end
  local at = math.max(tat - tau, now)  -- the next conforming start
  if booked and booked > now then
    out[#out + 1] = -lim_us(booked - now)
  elseif at <= now or (max_wait > 0 and at - now <= max_wait) then
    tat = tat + interval
    granted = granted + 1
    if booked then redis.call('ZREM', parked, member) end
    if at <= now then out[#out + 1] = 0 else out[#out + 1] = lim_us(at - now) end
  else
    if told == 0 then
      redis.call('ZREMRANGEBYSCORE', parked, '-inf', now - PARKED_FORGET_MS)
    end
    told = told + 1
    local back = math.max(book, at)
    book, booked_more = back + interval, true
    redis.call('ZADD', parked, back, member)
    lim_note_wait(KEYS, 1, key, now, back - now)
    out[#out + 1] = -lim_us(back - now)
  end
end
if granted > 0 then
  redis.call('HSET', state, 't', lim_fmt(tat))
  lim_count(KEYS[LK.counters], 'granted', granted)
end
if booked_more then redis.call('HSET', state, 'b', lim_fmt(book)) end
if granted > 0 or booked_more then
  redis.call('PEXPIRE', state, math.floor(math.max(tat, book) - now) + 3600000)
end
if told > 0 then lim_expire(KEYS, 1, now, math.max(book, tat)) end
if not stored then lim_touch(KEYS, 1, key, now) end  -- a new limiter key: list it
return out
