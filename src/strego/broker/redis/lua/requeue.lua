-- Run tasks now: move scheduled, retry or dead tasks back to their stream (admin "retry").
-- Each task moves only if its index record is still the one the caller read, so a
-- task that changed state meanwhile is left alone (compare-and-set).
-- KEYS: the queue layout (see Q in _lib.lua)
-- ARGV: 1 channel, then triples: task id, expected record, new blob (attempts reset)
-- Returns how many tasks moved.
local zsets = {s = KEYS[Q.scheduled], r = KEYS[Q.retry], d = KEYS[Q.dead]}
local moved = 0
for i = 2, #ARGV, 3 do
  local tid, expected, blob = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local rec = redis.call('HGET', KEYS[Q.index], tid)
  if rec and rec == expected then
    local state, band = split_record(rec)
    local zset = zsets[state]
    if zset then
      redis.call('ZREM', zset, tid)
      redis.call('HDEL', KEYS[Q.bodies], tid)
      local eid = redis.call('XADD', KEYS[band + 1], '*', 'd', blob)
      redis.call('HSET', KEYS[Q.index], tid, 'p|' .. band .. '|' .. eid)
      moved = moved + 1
    end
  end
end
if moved > 0 then wake_workers(KEYS[Q.idle], ARGV[1]) end
return moved
