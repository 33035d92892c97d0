-- Ask a rate limiter (GCRA) for starts now, for one or many tasks of one limiter key;
-- over the limit, book each refused task a time to come back, behind every task
-- booked before it (so parked tasks return spread out, one per interval, instead of
-- all at once).
-- KEYS: one limiter key's keys (LK in _limits.lua)
-- ARGV: 1 interval ms (per / limit)  2 tau ms ((burst - 1) * interval)  3 limiter key
--       (for the registry and recent waits), then members ('<queue>|<task id>')
-- Returns per member 0 when it may start now, else its wait in microseconds. Asking
-- again for a member before its time gives the same answer (a worker that crashed
-- between this and the park: the task is reclaimed and asks again; nothing is lost).
local now = lim_now()
local interval, tau, key = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local state, parked = KEYS[LK.state], KEYS[LK.parked]
local stored, book = lim_rate_state(state)
local tat = stored or now
if tat < now then tat = now end
local recent = book > now - PARKED_FORGET_MS  -- someone was booked lately
local out, granted, refused, booked_more = {}, 0, 0, false
for i = 4, #ARGV do
  local member = ARGV[i]
  local booked = recent and tonumber(redis.call('ZSCORE', parked, member))
  if booked and booked > now then
    out[#out + 1] = lim_us(booked - now)
  elseif now >= tat - tau and (booked or book <= now) then
    tat = tat + interval
    granted = granted + 1
    if booked then redis.call('ZREM', parked, member) end
    out[#out + 1] = 0
  else
    if refused == 0 then
      redis.call('ZREMRANGEBYSCORE', parked, '-inf', now - PARKED_FORGET_MS)
    end
    refused = refused + 1
    local at
    if booked then
      -- Its time came but another start took the slot: the next conforming time,
      -- keeping its place ahead of the tasks booked after it.
      at = math.max(tat - tau, now)
    else
      at = math.max(book, tat - tau, now)
      book, booked_more = at + interval, true
    end
    redis.call('ZADD', parked, at, member)
    lim_note_wait(KEYS, 1, key, now, at - now)
    out[#out + 1] = lim_us(at - now)
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
if refused > 0 then lim_expire(KEYS, 1, now, math.max(book, tat)) end
if not stored then lim_touch(KEYS, 1, key, now) end  -- a new limiter key: list it
return out
