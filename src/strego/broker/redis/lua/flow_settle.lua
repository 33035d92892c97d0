-- A workflow member of this queue finished (an outbox entry): count it, and say who
-- waits for it and with what result. Once every task of the workflow in this queue
-- completed, this queue's part expires after `done ttl` (with the results).
-- KEYS: 1 the workflow's hash here  2 the task's result key
-- ARGV: 1 task id  2 how it ended (c, d, x)  3 done ttl ms
-- Returns {downstream JSON or '', stored result or ''}.
local flow, tid = KEYS[1], ARGV[1]
if redis.call('EXISTS', flow) == 0 then return {'', ''} end
local stored = ''
if ARGV[2] == 'c' then
  stored = redis.call('GET', KEYS[2]) or ''
  if redis.call('HSETNX', flow, 'ok:' .. tid, '1') == 1 then
    local ok = redis.call('HINCRBY', flow, 'ok', 1)
    if ok >= (tonumber(redis.call('HGET', flow, 'nq')) or 0) then
      redis.call('PEXPIRE', flow, ARGV[3])
    end
  end
end
return {redis.call('HGET', flow, 'd:' .. tid) or '', stored}
