-- Give back deliveries a stopping worker did not start, or had to cut off: each goes
-- back to the end of its band's stream as a new entry, at once available to every
-- worker (not after claim_stale_after), its delivery not counted against the poison
-- cap. Fenced: only deliveries this consumer still holds at the given count. A task
-- with a cancel request is finished as cancelled instead; one whose body was deleted
-- is dead-lettered as lost.
-- KEYS: the queue layout (see Q in _lib.lua)
-- ARGV: 1 group  2 consumer  3 channel  4 queue name  5 keep_completed  6 max dead
--       7 dead ttl ms, then per delivery 4 values: band, entry id, delivery count, task id
-- Returns the number of deliveries given back to the queue.
local group, consumer = ARGV[1], ARGV[2]
local now = now_ms()
local released = 0
for i = 8, #ARGV, 4 do
  local band, eid, deliveries, tid = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local stream = KEYS[band + 1]
  if owned(stream, group, eid, consumer, deliveries) then
    local blob = entry_blob(stream, eid)
    if tid == '' and blob then tid = blob_task_id(blob) or '' end  -- cut off before decoding
    local rec = redis.call('HGET', KEYS[Q.index], tid)
    local due = take_back(stream, group, eid, KEYS[Q.index], tid)
    if not blob then
      bury(KEYS[Q.dead], KEYS[Q.index], KEYS[Q.bodies], KEYS[Q.stats], KEYS[Q.tp], '', tid,
           band, lost_blob(tid, ARGV[4], 'stream entry ' .. eid .. ' was deleted while pending',
                           now),
           now, '', due, consumer, tonumber(ARGV[7]), tonumber(ARGV[6]))
      notify_waiters(KEYS[Q.waiters], tid, 'd')
    elseif rec and string.sub(rec, 1, 1) == 'k' then
      finish(KEYS[Q.index], KEYS[Q.bodies], KEYS[Q.finished], tid, band, 'x', blob, now,
             consumer, tonumber(ARGV[5]), '', due)
      incr(KEYS[Q.stats], 'cancelled', 1)
      notify_waiters(KEYS[Q.waiters], tid, 'x')
    else
      local new = redis.call('XADD', stream, '*', 'd', blob)
      local record = 'p|' .. band .. '|' .. new
      if due ~= '' then record = record .. '||' .. due end
      redis.call('HSET', KEYS[Q.index], tid, record)
      released = released + 1
    end
  end
end
if released > 0 then
  redis.call('DEL', KEYS[Q.idle], handoff_of(KEYS[Q.idle]))  -- see hand_off in _lib.lua
  redis.call('PUBLISH', ARGV[3], 'w')
end
return released
