-- Enqueue one task, atomically with its unique key and index record.
-- KEYS: 1 stream (the task's band)  2 index  3 bodies  4 scheduled  5 stats
--       6 unique key  7 processed marker  8 idle  9 hand-off registry  10 paused
--       (6 and 7 are always passed, so every key is in the queue's cluster slot: when
--       the task has no unique key / no explicit id they are placeholders: see ARGV 8, 9)
-- ARGV: 1 task id  2 blob  3 band  4 delay ms (-1: none)  5 process_at ms (-1: none)
--       6 unique ttl ms  7 channel  8 '1' if KEYS[6] is used  9 '1' if KEYS[7] is used
-- Returns {status, ref}: {'pending', entry id} | {'scheduled', due ms}
--   | {'duplicate', holder id} | {'exists', record} | {'processed', ''}
local unique, processed = false, false
if ARGV[8] == '1' then unique = KEYS[6] end
if ARGV[9] == '1' then processed = KEYS[7] end
local status, ref = enqueue_check(KEYS[2], unique, processed, ARGV[1], {})
if status then return {status, ref} end
local woke
status, ref, woke = enqueue_write(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], unique,
  ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7])
-- An idle worker registered for a hand-off gets the task straight away (one hop);
-- else idle workers are woken by pub/sub and fetch it. A registration implies the idle
-- marker (fetch.lua sets both), so with no marker there is nothing to check: one call.
if woke and redis.call('EXISTS', KEYS[8]) == 1
    and not (redis.call('EXISTS', KEYS[9]) == 1
             and hand_off(KEYS[9], KEYS[10], KEYS[1], tonumber(ARGV[3]))) then
  redis.call('DEL', KEYS[8], KEYS[9])  -- as wake_workers: see hand_off in _lib.lua
  redis.call('PUBLISH', ARGV[7], 'w')
end
return {status, ref}
