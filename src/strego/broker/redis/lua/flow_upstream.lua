-- The stored results of a task's dependencies, in order (task.upstream_results).
-- KEYS: 1 the workflow's hash in the task's queue
-- ARGV: 1 task id
-- Returns a list: per dependency its stored result ('' = none, false = not recorded).
local flow, tid = KEYS[1], ARGV[1]
local spec = redis.call('HGET', flow, 'n:' .. tid)
if not spec then return {} end
local need = tonumber(string.match(spec, '^%d+|(%d+)|')) or 0
if need == 0 then return {} end
local fields = {}
for i = 0, need - 1 do fields[#fields + 1] = 'r:' .. tid .. ':' .. i end
return redis.call('HMGET', flow, unpack(fields))
