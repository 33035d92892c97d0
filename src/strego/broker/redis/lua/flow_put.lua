-- Store one chunk of a workflow's tasks living in this queue (phase 1 of enqueue).
-- Nothing here is visible to workers or Client.result until flow_start/flow_open:
-- a producer that dies now leaves only this hash, which expires.
-- KEYS: 1 the workflow's hash in this queue
-- ARGV: 1 ttl ms  2 chunk number (1..)  3 tasks in this queue (all chunks)
--       then per task 4 values: task id, spec "band|need|delay|at", downstream JSON
--       ('' = none), body
local flow = KEYS[1]
local ids = {}
for i = 4, #ARGV, 4 do
  local tid = ARGV[i]
  ids[#ids + 1] = tid
  redis.call('HSET', flow, 'n:' .. tid, ARGV[i + 1], 'b:' .. tid, ARGV[i + 3])
  if ARGV[i + 2] ~= '' then redis.call('HSET', flow, 'd:' .. tid, ARGV[i + 2]) end
end
redis.call('HSET', flow, 'ids:' .. ARGV[2], cjson.encode(ids), 'nq', ARGV[3])
local chunks = tonumber(redis.call('HGET', flow, 'chunks')) or 0
if tonumber(ARGV[2]) > chunks then redis.call('HSET', flow, 'chunks', ARGV[2]) end
redis.call('PEXPIRE', flow, ARGV[1])
return #ids
