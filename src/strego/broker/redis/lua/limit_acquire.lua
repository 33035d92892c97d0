-- Take concurrency slots, one per delivery, for one or many tasks of one limiter key;
-- when every slot is held, book each refused task a time to come back, estimated
-- from how long slots are held (mean hold / limit apart), so parked tasks return
-- about as fast as slots free.
-- KEYS: one limiter key's keys (LK in _limits.lua)
-- ARGV: 1 limit  2 lease ms  3 limiter key, then per task 2 values: member
--       ('<queue>|<entry id>|<delivery count>'), booking member ('<queue>|<task id>')
-- Returns per task 0 when its slot is held (already held by this very delivery:
-- renewed, a no-op), else minus the microseconds after which it should ask again.
local now = lim_now()
local limit, lease, key = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local state, holders, acquired, parked = KEYS[LK.state], KEYS[LK.holders],
  KEYS[LK.acquired], KEYS[LK.parked]
lim_trim_holders(holders, acquired, now)
local book = lim_num(state, 'b') or 0
local recent = book > now - PARKED_FORGET_MS
local held = redis.call('ZCARD', holders)
local was_held = held
local out, granted, refused, step = {}, 0, 0, nil
for i = 4, #ARGV, 2 do
  local member, who = ARGV[i], ARGV[i + 1]
  local booked = recent and tonumber(redis.call('ZSCORE', parked, who))
  if redis.call('ZSCORE', holders, member) then
    redis.call('ZADD', holders, now + lease, member)
    out[#out + 1] = 0
  elseif booked and booked > now then
    out[#out + 1] = -lim_us(booked - now)
  elseif held < limit then
    redis.call('ZADD', holders, now + lease, member)
    redis.call('HSET', acquired, member, lim_fmt(now))
    if booked then redis.call('ZREM', parked, who) end
    held, granted = held + 1, granted + 1
    out[#out + 1] = 0
  else
    if refused == 0 then
      redis.call('ZREMRANGEBYSCORE', parked, '-inf', now - PARKED_FORGET_MS)
      step = math.max(1, (lim_num(state, 'd') or 100) / limit)
    end
    refused = refused + 1
    -- Slots free about once per (mean hold / limit): book returns that far apart, so
    -- most find a free slot. A task whose booking came and found none free is booked
    -- again the same way (returning all at once, the overdue ones would only collide).
    local at = math.max(book, now + step)
    book = at + step
    redis.call('ZADD', parked, at, who)
    lim_note_wait(KEYS, 1, key, now, at - now)
    out[#out + 1] = -lim_us(at - now)
  end
end
if granted > 0 then
  redis.call('PEXPIRE', holders, lease + 3600000)
  redis.call('PEXPIRE', acquired, lease + 3600000)
  lim_count(KEYS[LK.counters], 'granted', granted)
  if was_held == 0 then lim_touch(KEYS, 1, key, now) end  -- (re)starting use: list it
end
if refused > 0 then
  redis.call('HSET', state, 'b', lim_fmt(book))
  lim_expire(KEYS, 1, now, math.max(book, now + lease))
end
return out
