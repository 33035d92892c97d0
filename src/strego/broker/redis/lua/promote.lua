-- Move due scheduled/retry tasks (a bounded batch) into their band's stream.
-- KEYS: 1..11 streams  12 index  13 bodies  14 scheduled  15 retry  16 idle
-- ARGV: 1 batch limit  2 channel
-- Returns {moved, next due ms or -1, redis now ms}: the caller sleeps until next due,
-- measured on Redis's clock so producer/worker clock skew does not matter.
local now = now_ms()
local limit = tonumber(ARGV[1])
local moved = 0
for z = 14, 15 do
local ids = redis.call('ZRANGEBYSCORE', KEYS[z], '-inf', now, 'LIMIT', 0, limit)
for _, tid in ipairs(ids) do
  redis.call('ZREM', KEYS[z], tid)
  local blob = redis.call('HGET', KEYS[13], tid)
  local rec = redis.call('HGET', KEYS[12], tid)
  if blob and rec then
    local _, band = split_record(rec)
    band = band or 0
    local eid = redis.call('XADD', KEYS[band + 1], '*', 'd', blob)
    redis.call('HSET', KEYS[12], tid, 'p|' .. band .. '|' .. eid)
    redis.call('HDEL', KEYS[13], tid)
    moved = moved + 1
  end
end
end
if moved > 0 then wake_workers(KEYS[16], ARGV[2]) end
local next_due = -1
for z = 14, 15 do
  local nxt = redis.call('ZRANGE', KEYS[z], 0, 0, 'WITHSCORES')
  if #nxt > 0 and (next_due < 0 or tonumber(nxt[2]) < next_due) then next_due = tonumber(nxt[2]) end
end
return {moved, next_due, now}
