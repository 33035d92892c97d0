-- Finish a batch of tasks this consumer ran: completed or cancelled.
-- Per task, atomically: delivery fence, XACK + XDEL, index → finished ring, its result
-- (so a task is never completed without its result, nor a result without completion),
-- counters, and a word to its waiters if some Client.result registered for it.
-- KEYS: 1..11 streams  12 index  13 bodies  14 finished  15 stats  16 throughput hour
--       17 result waiters (zset and channel)
--       18.. per task, in order: its processed marker (explicit = 1), then its result
--       key (when its result ttl is not '')
-- ARGV: 1 group  2 consumer  3 keep_completed  4 processed ttl ms  5 minute field ('' = none)
--       then per task 9 values: entry id, task id, band, state ('c' or 'x'),
--       explicit (0/1), delivery count (the fence), duration ms, result ttl ms ('' = no
--       result key given; an explicit id's key is given, with '' as the result, to clear
--       what an earlier run kept), stored result ('' = none)
-- Returns the task ids whose delivery was superseded (late outcomes, dropped); a replay
-- of an ack that already landed is not reported.
local group, consumer, keep = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = now_ms()
local dropped = {}
local done, cancelled = 0, 0
local extra = 18
for i = 6, #ARGV, 9 do
  local eid, tid, band, state, explicit, deliveries, took = ARGV[i], ARGV[i + 1],
    tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], tonumber(ARGV[i + 6])
  local result_ttl, stored = ARGV[i + 7], ARGV[i + 8]
  local stream = KEYS[band + 1]
  local marker_key, result_key = nil, false
  if explicit == '1' then marker_key = KEYS[extra]; extra = extra + 1 end
  if result_ttl ~= '' then result_key = KEYS[extra]; extra = extra + 1 end
  if owned(stream, group, eid, consumer, deliveries) then
    local blob = entry_blob(stream, eid)
    local due = take_back(stream, group, eid, KEYS[12], tid)
    finish(KEYS[12], KEYS[13], KEYS[14], tid, band, state, blob, now, consumer, keep,
           now - took, due)
    if marker_key then redis.call('SET', marker_key, '1', 'PX', ARGV[4]) end
    local letter = state
    if state == 'x' then
      cancelled = cancelled + 1
    else
      done = done + 1
      letter = keep_result(KEYS[13], tid, result_key, result_ttl, stored,
                           keep > 0 and blob ~= nil)
    end
    notify_waiters(KEYS[17], tid, letter, stored)
  else
    -- Not ours any more. If the index already says this consumer finished it, this is
    -- a replay of our own ack whose reply was lost (a retried pipeline): not a loss.
    local rec = redis.call('HGET', KEYS[12], tid)
    local st, _, _, _, _, by = split_record(rec or 'z|0|')
    if not (rec and st == state and by == consumer) then
      dropped[#dropped + 1] = tid
    end
  end
end
if done > 0 then count(KEYS[15], KEYS[16], 'processed', ARGV[5] .. ':p', done) end
if cancelled > 0 then count(KEYS[15], '', 'cancelled', '', cancelled) end
return dropped
