-- Workflow members of this queue finished (outbox entries of one workflow): count
-- the completed ones once, and say who waits for each and with what result. Once
-- every task of the workflow in this queue completed, this queue's part expires
-- after `done ttl` (with the results).
-- KEYS: 1 the workflow's hash here  2.. per task, its result key
-- ARGV: 1 done ttl ms  then per task 2 values: task id, how it ended (c, d, x)
-- Returns per task 2 values: downstream JSON ('' = none), stored result ('' = none).
local flow = KEYS[1]
local out = {}
local exists = redis.call('EXISTS', flow) == 1
local completed = 0
for i = 2, #ARGV, 2 do
  local tid, letter = ARGV[i], ARGV[i + 1]
  local down, stored = '', ''
  if exists then
    if letter == 'c' then
      stored = redis.call('GET', KEYS[i / 2 + 1]) or ''
      if redis.call('HSETNX', flow, 'ok:' .. tid, '1') == 1 then completed = completed + 1 end
    end
    down = redis.call('HGET', flow, 'd:' .. tid) or ''
  end
  out[#out + 1] = down
  out[#out + 1] = stored
end
if completed > 0 then
  local ok = redis.call('HINCRBY', flow, 'ok', completed)
  if ok >= (tonumber(redis.call('HGET', flow, 'nq')) or 0) then
    redis.call('PEXPIRE', flow, ARGV[1])
  end
end
return out
