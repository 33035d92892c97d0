-- Move due scheduled/retry tasks (a bounded batch) into their band's stream.
-- A due task whose body or index record has gone missing is dead-lettered as lost
-- (with its body when that is what is left), never dropped in silence.
-- KEYS: the queue layout (see Q in _lib.lua)
-- ARGV: 1 batch limit  2 channel  3 queue name  4 max dead  5 dead ttl ms
-- Returns {moved, next due ms or -1, redis now ms}: the caller sleeps until next due,
-- measured on Redis's clock so producer/worker clock skew does not matter.
local now = now_ms()
local limit = tonumber(ARGV[1])
local moved = 0
for _, z in ipairs({Q.scheduled, Q.retry}) do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[z], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  for i = 1, #ids, 2 do
    local tid, due = ids[i], ids[i + 1]
    redis.call('ZREM', KEYS[z], tid)
    local blob = redis.call('HGET', KEYS[Q.bodies], tid)
    local rec = redis.call('HGET', KEYS[Q.index], tid)
    local state, band = split_record(rec or 'z|0|')
    if blob and rec and (state == 's' or state == 'r') then
      local eid = redis.call('XADD', KEYS[band + 1], '*', 'd', blob)
      redis.call('HSET', KEYS[Q.index], tid, 'p|' .. band .. '|' .. eid .. '||' .. due)
      redis.call('HDEL', KEYS[Q.bodies], tid)
      moved = moved + 1
    elseif not rec or state == 's' or state == 'r' then
      local why = 'its body was missing when it came due'
      if blob then why = 'its index record was missing when it came due' end
      bury(KEYS[Q.dead], KEYS[Q.index], KEYS[Q.bodies], KEYS[Q.stats], '', '', tid, band,
           blob or lost_blob(tid, ARGV[3], why, now), now, '', due, '',
           tonumber(ARGV[5]), tonumber(ARGV[4]))
      notify_waiters(KEYS[Q.waiters], tid, 'd')
    end
  end
end
if moved > 0 then wake_workers(KEYS[Q.idle], ARGV[2]) end
local next_due = -1
for _, z in ipairs({Q.scheduled, Q.retry}) do
  local nxt = redis.call('ZRANGE', KEYS[z], 0, 0, 'WITHSCORES')
  if #nxt > 0 and (next_due < 0 or tonumber(nxt[2]) < next_due) then
    next_due = tonumber(nxt[2])
  end
end
return {moved, next_due, now}
