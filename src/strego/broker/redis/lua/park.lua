-- Park a task a limiter holds back: from its stream to the scheduled set, due when the
-- limiter said, atomically and fenced like every outcome. Not a retry (retry_count
-- and the body are unchanged; the new stream entry starts a fresh delivery count),
-- not a failure: counted as rate_limited.
-- KEYS: the queue layout (see Q in _lib.lua)
-- ARGV: 1 group  2 consumer  3 band  4 entry id  5 delivery count (the fence)
--       6 task id  7 blob (as delivered)  8 delay ms  9 channel  10 keep_completed
-- Returns 1 parked (or already, by this very call replayed), 0 superseded delivery
-- (dropped), 2 cancelled instead (a cancel was requested while it was delivered).
local group, consumer, band, eid, tid = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[6]
local stream = KEYS[band + 1]
if not owned(stream, group, eid, consumer, ARGV[5]) then
  local rec = redis.call('HGET', KEYS[Q.index], tid)
  if rec and string.sub(rec, 1, 1) == 's' and redis.call('HGET', KEYS[Q.bodies], tid) == ARGV[7]
  then return 1 end
  return 0
end
local now = now_ms()
local rec = redis.call('HGET', KEYS[Q.index], tid)
local due_was = take_back(stream, group, eid, KEYS[Q.index], tid)
if rec and string.sub(rec, 1, 1) == 'k' then
  finish(KEYS[Q.index], KEYS[Q.bodies], KEYS[Q.finished], tid, band, 'x', ARGV[7], now,
         consumer, tonumber(ARGV[10]), '', due_was)
  incr(KEYS[Q.stats], 'cancelled', 1)
  notify_waiters(KEYS[Q.waiters], tid, 'x')
  return 2
end
local due = now + tonumber(ARGV[8])
redis.call('ZADD', KEYS[Q.scheduled], due, tid)
redis.call('HSET', KEYS[Q.bodies], tid, ARGV[7])
redis.call('HSET', KEYS[Q.index], tid, 's|' .. band .. '|' .. due)
incr(KEYS[Q.stats], 'rate_limited', 1)
notify_due(KEYS[Q.scheduled], ARGV[9], tid, due)
return 1
