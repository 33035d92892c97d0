-- Cancel a task that has not finished.
-- KEYS: the queue layout (see Q in _lib.lua)
-- ARGV: 1 task id  2 group (used only if none is recorded)  3 channel  4 keep_completed
-- Returns 1 cancelled, 2 cancel requested from the worker holding it, 0 not cancellable.
-- A delivered task gets the record 'k': whoever holds it finishes it as cancelled
-- before its handler starts (a worker that died holding it: the reclaimer does), or
-- its running handler is interrupted.
local tid = ARGV[1]
local rec = redis.call('HGET', KEYS[Q.index], tid)
if not rec then return 0 end
local state, band, ref, _, due = split_record(rec)
local group = group_of(KEYS[Q.group], ARGV[2])
local now = now_ms()
local keep = tonumber(ARGV[4])
if state == 'p' then
  local stream = KEYS[band + 1]
  if delivered(stream, group, ref) then
    redis.call('HSET', KEYS[Q.index], tid, 'k' .. string.sub(rec, 2))
    redis.call('PUBLISH', ARGV[3], 'c:' .. tid)
    return 2
  end
  local blob = entry_blob(stream, ref)
  redis.call('XDEL', stream, ref)
  finish(KEYS[Q.index], KEYS[Q.bodies], KEYS[Q.finished], tid, band, 'x', blob, now, '', keep,
         '', due)
elseif state == 's' or state == 'r' then
  redis.call('ZREM', KEYS[Q.scheduled], tid)
  redis.call('ZREM', KEYS[Q.retry], tid)
  local blob = redis.call('HGET', KEYS[Q.bodies], tid)
  finish(KEYS[Q.index], KEYS[Q.bodies], KEYS[Q.finished], tid, band, 'x', blob, now, '', keep,
         '', ref)
elseif state == 'k' then
  redis.call('PUBLISH', ARGV[3], 'c:' .. tid)
  return 2
else
  return 0
end
incr(KEYS[Q.stats], 'cancelled', 1)
notify_waiters(KEYS[Q.waiters], tid, 'x')
return 1
