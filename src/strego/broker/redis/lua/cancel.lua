-- Cancel a task that has not finished.
-- KEYS: 1..11 streams  12 index  13 bodies  14 scheduled  15 finished  16 stats  17 retry
-- ARGV: 1 task id  2 group  3 channel  4 keep_completed
-- Returns 1 cancelled, 2 cancel requested from the worker running it, 0 not cancellable.
local tid = ARGV[1]
local rec = redis.call('HGET', KEYS[12], tid)
if not rec then return 0 end
local state, band, ref = split_record(rec)
local now = now_ms()
local keep = tonumber(ARGV[4])
if state == 'p' then
  local stream = KEYS[band + 1]
  if delivered(stream, ARGV[2], ref) then
    redis.call('HSET', KEYS[12], tid, 'k|' .. band .. '|' .. ref)
    redis.call('PUBLISH', ARGV[3], 'c:' .. tid)
    return 2
  end
  local blob = entry_blob(stream, ref)
  redis.call('XDEL', stream, ref)
  finish(KEYS[12], KEYS[13], KEYS[15], tid, band, 'x', blob, now, '', keep)
elseif state == 's' or state == 'r' then
  redis.call('ZREM', KEYS[14], tid)
  redis.call('ZREM', KEYS[17], tid)
  local blob = redis.call('HGET', KEYS[13], tid)
  finish(KEYS[12], KEYS[13], KEYS[15], tid, band, 'x', blob, now, '', keep)
elseif state == 'k' then
  redis.call('PUBLISH', ARGV[3], 'c:' .. tid)
  return 2
else
  return 0
end
redis.call('HINCRBY', KEYS[16], 'cancelled', 1)
return 1
