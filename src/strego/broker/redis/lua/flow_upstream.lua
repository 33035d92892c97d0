-- The stored results of a task's dependencies, in order (task.upstream_results).
-- KEYS: 1 the workflow's hash in the task's queue
-- ARGV: 1 task id
-- Returns a list: per dependency its stored result ('' = none, false = not recorded).
local flow, tid = KEYS[1], ARGV[1]
local spec = redis.call('HGET', flow, 'n:' .. tid)
if not spec then return {} end
local need = tonumber(string.match(spec, '^%d+|(%d+)|')) or 0
if need == 0 then return {} end
-- HMGET in slices: Lua's unpack() takes a few thousand values at most (a fan-in of
-- 10 000 is legal).
local out = {}
for first = 0, need - 1, 1000 do
  local fields = {}
  for i = first, math.min(first + 999, need - 1) do fields[#fields + 1] = 'r:' .. tid .. ':' .. i end
  for _, value in ipairs(redis.call('HMGET', flow, unpack(fields))) do out[#out + 1] = value end
end
return out
