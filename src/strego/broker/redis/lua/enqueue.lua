-- Enqueue one task, atomically with its unique key and index record.
-- KEYS: 1 stream (the task's band)  2 index  3 bodies  4 scheduled  5 stats
--       6 unique key  7 processed marker  8 idle
--       (6 and 7 are always passed, so every key is in the queue's cluster slot: when
--       the task has no unique key / no explicit id they are placeholders: see ARGV 8, 9)
-- ARGV: 1 task id  2 blob  3 band  4 delay ms (-1: none)  5 process_at ms (-1: none)
--       6 unique ttl ms  7 channel  8 '1' if KEYS[6] is used  9 '1' if KEYS[7] is used
-- Returns {status, ref}: {'pending', entry id} | {'scheduled', due ms}
--   | {'duplicate', holder id} | {'exists', record} | {'processed', ''}
local tid, blob, band = ARGV[1], ARGV[2], ARGV[3]
local existing = redis.call('HGET', KEYS[2], tid)
if existing then
  -- Any record of an auto id means this very task was already enqueued: a client
  -- retrying after a lost reply must not run it twice (an auto id is never reused).
  -- An explicit id may run again once it finished and its marker expired.
  local st = string.sub(existing, 1, 1)
  if (st ~= 'c' and st ~= 'x') or ARGV[9] ~= '1' then return {'exists', existing} end
end
if ARGV[9] == '1' and redis.call('EXISTS', KEYS[7]) == 1 then return {'processed', ''} end
if ARGV[8] == '1' then
  local holder = redis.call('GET', KEYS[6])
  if holder then return {'duplicate', holder} end
  redis.call('SET', KEYS[6], tid, 'PX', ARGV[6])
end
redis.call('HINCRBY', KEYS[5], 'enqueued', 1)
-- Due times use Redis's clock (TIME), so producer clock skew does not move them.
local due, now = -1, 0
if tonumber(ARGV[4]) > 0 or tonumber(ARGV[5]) > 0 then
  now = now_ms()
  if tonumber(ARGV[4]) > 0 then due = now + tonumber(ARGV[4]) end
  if tonumber(ARGV[5]) > now then due = tonumber(ARGV[5]) end
end
if due > now then
  redis.call('ZADD', KEYS[4], due, tid)
  redis.call('HSET', KEYS[3], tid, blob)
  redis.call('HSET', KEYS[2], tid, 's|' .. band .. '|' .. due)
  notify_due(KEYS[4], ARGV[7], tid, due)
  return {'scheduled', tostring(due)}
end
local eid = redis.call('XADD', KEYS[1], '*', 'd', blob)
redis.call('HSET', KEYS[2], tid, 'p|' .. band .. '|' .. eid)
wake_workers(KEYS[8], ARGV[7])
return {'pending', eid}
