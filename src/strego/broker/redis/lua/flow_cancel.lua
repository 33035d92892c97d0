-- Cancel a workflow in this queue: nothing is released from now on, held tasks are
-- cancelled; returns the ids of tasks already released, for the caller to cancel
-- through cancel.lua (pending, scheduled, running) like any task.
-- KEYS: the queue layout, 24 the workflow's hash here
-- ARGV: 1 keep_completed
-- Returns {held tasks cancelled here, released task id...}.
local flow = KEYS[F]
if redis.call('EXISTS', flow) == 0 then return {0} end
redis.call('HSET', flow, 'cancel', '1')
local released = {0}
local chunks = tonumber(redis.call('HGET', flow, 'chunks')) or 0
for k = 1, chunks do
  for _, tid in ipairs(cjson.decode(redis.call('HGET', flow, 'ids:' .. k) or '[]')) do
    local st = redis.call('HGET', flow, 's:' .. tid)
    if st == 'r' then
      released[#released + 1] = tid
    elseif not st then
      if flow_cancel_held(tid, 'cancelled', tonumber(ARGV[1])) then
        released[1] = released[1] + 1
      end
    end
  end
end
return released
