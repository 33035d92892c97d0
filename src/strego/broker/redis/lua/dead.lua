-- Dead-letter one task, atomically, then trim dead letters by age and count.
-- KEYS: 1 stream  2 index  3 bodies  4 dead  5 stats  6 throughput hour
-- ARGV: 1 group  2 consumer  3 entry id ('' = not in a stream: a lost entry)
--       4 task id  5 blob (with reason, error, traceback)  6 band  7 max dead
--       8 dead ttl ms  9 minute field
-- Returns 1 dead-lettered (or already, by this very call replayed), 0 not owned (late
-- outcome dropped).
local stream, eid, tid = KEYS[1], ARGV[3], ARGV[4]
if eid ~= '' then
  if not owned(stream, ARGV[1], eid, ARGV[2]) then
    if already_applied(KEYS[2], KEYS[3], tid, 'd', ARGV[5]) then return 1 end
    return 0
  end
  redis.call('XACK', stream, ARGV[1], eid)
  redis.call('XDEL', stream, eid)
end
local now = now_ms()
redis.call('ZADD', KEYS[4], now, tid)
redis.call('HSET', KEYS[3], tid, ARGV[5])
redis.call('HSET', KEYS[2], tid, 'd|' .. ARGV[6] .. '|' .. now)
count(KEYS[5], KEYS[6], 'failed', ARGV[9] .. ':f', 1)
redis.call('HINCRBY', KEYS[5], 'dead', 1)

local function drop(ids)
  for _, old in ipairs(ids) do
    redis.call('ZREM', KEYS[4], old)
    local rec = redis.call('HGET', KEYS[2], old)
    if rec and string.sub(rec, 1, 1) == 'd' then
      redis.call('HDEL', KEYS[2], old)
      redis.call('HDEL', KEYS[3], old)
    end
  end
end
-- Bounded work per call: each dead letter added removes at most 100 old ones.
drop(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[8]), 'LIMIT', 0, 100))
local excess = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[7])
if excess > 0 then drop(redis.call('ZRANGE', KEYS[4], 0, math.min(excess, 100) - 1)) end
return 1
