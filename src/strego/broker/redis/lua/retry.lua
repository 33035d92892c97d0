-- Move one failed task from its stream to the retry set, atomically: there is never
-- a moment when it is both pending and scheduled for retry, or neither.
-- KEYS: 1 stream  2 index  3 bodies  4 retry  5 stats  6 throughput hour  7 finished
--       8 result waiters
-- ARGV: 1 group  2 consumer  3 entry id  4 task id  5 new blob (retry_count + 1, error)
--       6 delay ms  7 band  8 minute field  9 channel  10 keep_completed
--       11 delivery count (the fence)  12 duration ms  13 '1' a failed attempt, '0' not
--       one (a task no worker has a handler for yet: waiting, not failing)
-- Returns 1 scheduled (or already, by this very call replayed), 0 superseded delivery
-- (late outcome dropped), 2 cancelled instead.
local stream, eid, tid, band = KEYS[1], ARGV[3], ARGV[4], ARGV[7]
if not owned(stream, ARGV[1], eid, ARGV[2], ARGV[11]) then
  if already_applied(KEYS[2], KEYS[3], tid, 'r', ARGV[5]) then return 1 end
  return 0
end
local rec = redis.call('HGET', KEYS[2], tid)
local cancel_requested = rec and string.sub(rec, 1, 1) == 'k'
local due_was = take_back(stream, ARGV[1], eid, KEYS[2], tid)
local now = now_ms()
if ARGV[13] == '1' then count(KEYS[5], KEYS[6], 'failed', ARGV[8] .. ':f', 1) end
if cancel_requested then
  -- Cancelled while it ran: a cancelled task is never retried.
  finish(KEYS[2], KEYS[3], KEYS[7], tid, band, 'x', ARGV[5], now, ARGV[2], tonumber(ARGV[10]),
         now - tonumber(ARGV[12]), due_was)
  incr(KEYS[5], 'cancelled', 1)
  notify_waiters(KEYS[8], tid, 'x')
  return 2
end
local due = now + tonumber(ARGV[6])
redis.call('ZADD', KEYS[4], due, tid)
redis.call('HSET', KEYS[3], tid, ARGV[5])
redis.call('HSET', KEYS[2], tid, 'r|' .. band .. '|' .. due)
if ARGV[13] == '1' then incr(KEYS[5], 'retried', 1) end
notify_due(KEYS[4], ARGV[9], tid, due)
return 1
