-- Dependencies of tasks in this queue finished: record each arrival once, release
-- the tasks with nothing left to wait for (exactly once), cancel those whose
-- dependency failed. Idempotent: an outbox entry applied twice (a worker killed
-- before it acknowledged it) changes nothing the second time.
-- KEYS: the queue layout, 24 the workflow's hash here
-- ARGV: 1 channel  2 keep_completed  then per arrival 4 values: dependent task id,
--       position among its dependencies, how the dependency ended (c completed,
--       d dead, x cancelled), its stored result ('' = none)
local flow = KEYS[F]
if redis.call('EXISTS', flow) == 0 then return 0 end
local keep = tonumber(ARGV[2])
local woke = false
local arrived, order = {}, {}  -- per dependent: completions counted in this call
for i = 3, #ARGV, 4 do
  local tid, pos, letter, stored = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if letter == 'c' then
    if not arrived[tid] then arrived[tid] = 0; order[#order + 1] = tid end
    if redis.call('HSETNX', flow, 'r:' .. tid .. ':' .. pos, stored) == 1 then
      arrived[tid] = arrived[tid] + 1
    end
  else
    flow_cancel_held(tid, 'upstream_failed', keep)
  end
end
-- Then each dependent once (a chord callback may get hundreds of arrivals a call).
for _, tid in ipairs(order) do
  if arrived[tid] > 0 then redis.call('HINCRBY', flow, 'a:' .. tid, arrived[tid]) end
  if flow_release(tid, ARGV[1]) then woke = true end
end
if woke then wake_workers(KEYS[Q.idle], ARGV[1]) end
return 1
